// Package smalldisk gives tests a small disk to fill: a tmpfs mounted for
// one test, and files that take its free space, so that a test can run a
// component out of disk space and free it again. Only tests import it; it
// needs Linux (tmpfs, fallocate), like the tests that use it.
package smalldisk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a fresh temporary directory and
// returns the directory; it is unmounted at cleanup (lazily, so files a
// stopped component left open do not fail the test). Without the right to
// mount (root), the test is skipped.
func Mount(tb testing.TB, size int64) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		tb.Skipf("needs to mount a small tmpfs (root): mount: %v", err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Free is the space left on dir's disk, in bytes.
func Free(tb testing.TB, dir string) int64 {
	tb.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		tb.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// MiB is Free in MiB, for log and failure messages.
func MiB(tb testing.TB, dir string) string {
	tb.Helper()
	return fmt.Sprintf("%.1f MiB", float64(Free(tb, dir))/(1<<20))
}

// Allocate creates path with size bytes of allocated blocks.
func Allocate(tb testing.TB, path string, size int64) {
	tb.Helper()
	f := open(tb, path)
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		tb.Fatalf("allocate %d bytes for %s: %v", size, path, err)
	}
}

// LeaveFree grows the file path (creating it) until about free bytes stay
// free on its disk; 0 takes every free block. It allocates a megabyte at a
// time, then less near the end: the last pages do not always fit.
func LeaveFree(tb testing.TB, path string, free int64) {
	tb.Helper()
	f := open(tb, path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	size, grow := fi.Size(), Free(tb, filepath.Dir(path))-free
	for n := int64(1 << 20); grow >= 4096 && n >= 4096; {
		step := min(n, grow)
		err := syscall.Fallocate(int(f.Fd()), 0, size, step)
		switch {
		case err == nil:
			size, grow = size+step, grow-step
		case errors.Is(err, syscall.ENOSPC):
			n = step / 2
		default:
			tb.Fatalf("allocate %d bytes for %s: %v", step, path, err)
		}
	}
}

func open(tb testing.TB, path string) *os.File {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}
