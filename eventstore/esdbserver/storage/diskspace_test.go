package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/eventually"
	"github.com/ordo-dev/ordo/smalldisk"
)

func bigEvent(n, size int) []ProposedEvent {
	return []ProposedEvent{{ID: id(n), Type: "Big", Data: make([]byte, size)}}
}

// appendUntil appends one event until cond holds for the append's error,
// for up to 10 s.
func appendUntil(tb testing.TB, s *Store, stream string, cond func(error) bool) error {
	tb.Helper()
	n := 100_000
	var last error
	eventually.NoError(tb, 10*time.Second, "an append to return the awaited error", func() error {
		n++
		_, last = s.Append(context.Background(), stream, Expected{}, events(n, 1))
		if cond(last) {
			return nil
		}
		return fmt.Errorf("append returned %v", last)
	})
	return last
}

// TestAppendsRefusedBelowTheReserve: with less free space than the
// reserve, appends fail with ErrDiskFull and change nothing, reads go on,
// and appends resume by themselves once space is freed.
func TestAppendsRefusedBelowTheReserve(t *testing.T) {
	disk := smalldisk.Mount(t, 48<<20)
	s := openTest(t, filepath.Join(disk, "es"))
	ctx := context.Background()
	if _, err := s.Append(ctx, "before", Expected{}, events(0, 10)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 10<<20) // below the 16 MiB reserve
	err := appendUntil(t, s, "during", func(err error) bool { return err != nil })
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append with 10 MiB free: got %v, want ErrDiskFull", err)
	}
	if !strings.Contains(err.Error(), "resume by themselves") {
		t.Errorf("the error should say what happens next: %v", err)
	}
	if _, err := s.Append(ctx, "refused", Expected{}, events(0, 3)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("second append with 10 MiB free: got %v, want ErrDiskFull", err)
	}
	if got := readStream(t, s, "before"); len(got) != 10 {
		t.Fatalf("read %d events while the disk is full, want 10", len(got))
	}
	headFull := s.Head()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	appendUntil(t, s, "after", func(err error) bool { return err == nil })
	if got := readStream(t, s, "refused"); len(got) != 0 {
		t.Errorf("%d refused events were stored", len(got))
	}
	if s.Head() != headFull+1 {
		t.Errorf("head %d after one append past %d", s.Head(), headFull)
	}
}

// TestEngineOutOfSpaceUsesTheBallast: when the disk fills up between two
// checks and the engine's log write hits ENOSPC, the ballast is given
// back, the write succeeds and is acknowledged, and later appends are
// refused instead of crashing the process.
func TestEngineOutOfSpaceUsesTheBallast(t *testing.T) {
	disk := smalldisk.Mount(t, 48<<20)
	dir := filepath.Join(disk, "es")
	s, err := Open(dir, Options{diskCheckEvery: time.Hour}) // the guard keeps its first figure
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join(dir, ballastFile)); err != nil {
		t.Fatalf("no ballast after Open: %v", err)
	}
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 0)
	// Larger than the log's preallocated file: the engine must find new space.
	res, err := s.Append(ctx, "big", Expected{}, bigEvent(1, 6<<20))
	if err != nil {
		t.Fatalf("append that hit ENOSPC: got %v, want it written with the ballast's space", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ballastFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the ballast is still there after ENOSPC (%v)", err)
	}
	if _, err := s.Append(ctx, "after", Expected{}, events(1, 1)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append after the engine ran out of space: got %v, want ErrDiskFull", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filler)
	s = openTest(t, dir)
	got := readStream(t, s, "big")
	if len(got) != 1 || got[0].Position != res.Position || len(got[0].Data) != 6<<20 {
		t.Fatalf("after reopening: %d events (want the acknowledged one at %d)", len(got), res.Position)
	}
	if _, err := s.Append(ctx, "after", Expected{}, events(1, 1)); err != nil {
		t.Fatalf("append once space is back: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ballastFile)); err != nil {
		t.Fatalf("the ballast was not recreated: %v", err)
	}
}

// TestOpenOnAFullDisk: a store whose log holds unflushed events opens on a
// full disk (the ballast makes room for the table its log replays into),
// serves reads, refuses appends, and takes them again once space is freed.
// Without a ballast it says the disk is full instead of retrying forever.
func TestOpenOnAFullDisk(t *testing.T) {
	disk := smalldisk.Mount(t, 48<<20)
	dir := filepath.Join(disk, "es")
	s := openTest(t, dir)
	ctx := context.Background()
	for i := range 20 {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i), Expected{}, bigEvent(i, 100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 0)
	s = openWithin(t, dir, 60*time.Second)
	if got := readStream(t, s, "s-7"); len(got) != 1 {
		t.Fatalf("read %d events of s-7 on a full disk, want 1", len(got))
	}
	if _, err := s.Append(ctx, "full", Expected{}, events(1, 1)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("append on a full disk: got %v, want ErrDiskFull", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	appendUntil(t, s, "back", func(err error) bool { return err == nil })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Again, with the disk full and no ballast left to give back.
	for i := range 20 {
		s = openTest(t, dir)
		if _, err := s.Append(ctx, fmt.Sprint("t-", i), Expected{}, bigEvent(i, 100<<10)); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	os.Remove(filepath.Join(dir, ballastFile))
	smalldisk.LeaveFree(t, filepath.Join(disk, "filler"), 0)
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "free some space") {
		t.Fatalf("Open on a full disk without a ballast: got %v, want ErrDiskFull saying what to do", err)
	}
}

// openWithin opens dir, failing the test if Open does not return in time.
func openWithin(tb testing.TB, dir string, d time.Duration) *Store {
	tb.Helper()
	type result struct {
		s   *Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Open(dir, Options{})
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			tb.Fatalf("Open on a full disk: %v", r.err)
		}
		tb.Cleanup(func() { r.s.Close() })
		return r.s
	case <-time.After(d):
		tb.Fatalf("Open on a full disk did not return within %v", d)
		return nil
	}
}

// TestStoreDiskFollowsItsData: a store's files take about what its events
// need plus the ballast, not what the engine would preallocate.
func TestStoreDiskFollowsItsData(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if used := diskUsed(t, dir); used > 20<<20 {
		t.Fatalf("a fresh store takes %d bytes, want under 20 MB", used)
	}
	ctx := context.Background()
	for i := range 1000 { // 2 MB of events
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%50), Expected{}, bigEvent(i, 2000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if used := diskUsed(t, dir); used > 20<<20 {
		t.Fatalf("a store with 2 MB of events takes %d bytes, want under 20 MB", used)
	}
}

// diskUsed is the disk space the files in dir take (allocated blocks).
func diskUsed(tb testing.TB, dir string) int64 {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err == nil {
			n += st.Blocks * 512
		}
	}
	return n
}

// TestEngineWriteFailureIsReturned: with no ballast left, a log write that
// fails for lack of space reaches the engine's fatal commit path; the
// append gets the error (no panic), later writes are refused, reads go on,
// Close returns, and the failed append is not there after a restart.
func TestEngineWriteFailureIsReturned(t *testing.T) {
	disk := smalldisk.Mount(t, 48<<20)
	dir := filepath.Join(disk, "es")
	s, err := Open(dir, Options{diskCheckEvery: time.Hour, Ballast: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Append(ctx, "a", Expected{}, events(0, 1)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 0)
	if _, err := s.Append(ctx, "big", Expected{}, bigEvent(1, 100<<10)); err == nil || !strings.Contains(err.Error(), "refuses writes until the store is restarted") {
		t.Fatalf("append on a disk full to the last byte, without a ballast: got %v", err)
	}
	if _, err := s.Append(ctx, "b", Expected{}, events(2, 1)); err == nil {
		t.Fatal("an append after the engine failed was accepted")
	}
	if got := readStream(t, s, "a"); len(got) != 1 {
		t.Fatalf("read %d events after the engine failed, want 1", len(got))
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not return after the engine failed")
	}
	os.Remove(filler)
	s = openTest(t, dir)
	if got := readStream(t, s, "big"); len(got) != 0 {
		t.Fatalf("the append that failed is there after a restart (%d events)", len(got))
	}
	if _, err := s.Append(ctx, "b", Expected{}, events(2, 1)); err != nil {
		t.Fatalf("append after the restart: %v", err)
	}
}

// TestMustExistCreatesNothing: Open with MustExist of a directory without
// a store fails with ErrNoStore and leaves nothing behind.
func TestMustExistCreatesNothing(t *testing.T) {
	root := t.TempDir()
	for _, dir := range []string{filepath.Join(root, "missing"), root} {
		if _, err := Open(dir, Options{MustExist: true}); !errors.Is(err, ErrNoStore) {
			t.Fatalf("Open(%s, MustExist): got %v, want ErrNoStore", dir, err)
		}
	}
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Fatalf("Open with MustExist left %v", left)
	}
}
