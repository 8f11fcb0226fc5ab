package smalldisk_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ordo-dev/ordo/smalldisk"
)

// TestFillAndFree: a mounted disk is about the size asked for, LeaveFree
// leaves about what it is asked to, 0 takes every block, and removing the
// file gives the space back.
func TestFillAndFree(t *testing.T) {
	const size = 16 << 20
	disk := smalldisk.Mount(t, size)
	if free := smalldisk.Free(t, disk); free < size-(1<<20) || free > size {
		t.Fatalf("a fresh %d-byte disk has %d bytes free", size, free)
	}
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 4<<20)
	if free := smalldisk.Free(t, disk); free < 3<<20 || free > 4<<20 {
		t.Fatalf("LeaveFree 4 MiB left %d bytes free", free)
	}
	smalldisk.LeaveFree(t, filler, 0)
	if free := smalldisk.Free(t, disk); free > 64<<10 {
		t.Fatalf("LeaveFree 0 left %d bytes free", free)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	smalldisk.Allocate(t, filler, 2<<20)
	if free := smalldisk.Free(t, disk); free < size-(4<<20) || free > size-(2<<20) {
		t.Fatalf("after removing the filler and allocating 2 MiB, %d bytes free", free)
	}
}
