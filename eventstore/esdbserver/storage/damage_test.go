package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// populateStore appends n events in appends of 10 to dir's store and
// closes it; it returns the head.
func populateStore(tb testing.TB, dir string, n int, flush bool) Position {
	tb.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; i += 10 {
		if _, err := s.Append(ctx, "s-"+string(rune('a'+i%26)), Expected{}, events(i, min(10, n-i))); err != nil {
			tb.Fatal(err)
		}
	}
	if flush {
		if err := s.db.Flush(); err != nil {
			tb.Fatal(err)
		}
	}
	head := s.Head()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return head
}

// newest returns the engine file of dir matching pattern with the highest
// number and some content.
func newest(tb testing.TB, dir, pattern string) string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, pattern))
	sort.Strings(files)
	for i := len(files) - 1; i >= 0; i-- {
		if fi, err := os.Stat(files[i]); err == nil && fi.Size() > 0 {
			return files[i]
		}
	}
	tb.Fatalf("no non-empty %s in %s", pattern, dir)
	return ""
}

func truncateHalf(tb testing.TB, path string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		tb.Fatal(err)
	}
}

func checkStore(tb testing.TB, dir string, accept bool) CheckReport {
	tb.Helper()
	rep, err := Check(context.Background(), dir, CheckOptions{AcceptLoss: accept})
	if err != nil {
		tb.Fatalf("check: %v", err)
	}
	return rep
}

// TestTruncatedLogIsRefused: a store whose newest write-ahead log lost its
// second half does not open with fewer events than it acknowledged; check
// reports it; accepting the loss opens it with what remains.
func TestTruncatedLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	acked := populateStore(t, dir, 2000, false)
	truncateHalf(t, newest(t, dir, "*.log"))

	_, err := Open(dir, Options{})
	var lost *LostEventsError
	if !errors.As(err, &lost) {
		t.Fatalf("Open after the log was truncated: got %v, want a *LostEventsError", err)
	}
	if lost.Acknowledged != acked || lost.Head >= acked {
		t.Fatalf("reported head %d of %d acknowledged, want fewer than %d", lost.Head, lost.Acknowledged, acked)
	}
	for _, want := range []string{"missing acknowledged events", "--accept-loss", "backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	rep := checkStore(t, dir, false)
	if len(rep.Problems) == 0 || rep.Accepted || rep.Head != lost.Head {
		t.Fatalf("check: %+v, want the missing events reported", rep)
	}
	rep = checkStore(t, dir, true)
	if !rep.Accepted {
		t.Fatalf("check --accept-loss did not accept: %+v", rep)
	}
	s := openTest(t, dir)
	if s.Head() != lost.Head {
		t.Fatalf("head %d after accepting, want %d", s.Head(), lost.Head)
	}
	if _, err := s.Append(context.Background(), "after", Expected{}, events(9000, 1)); err != nil {
		t.Fatal(err)
	}
	if rep := checkStoreClosed(t, s, dir); len(rep.Problems) != 0 {
		t.Fatalf("check after accepting and appending: %v", rep.Problems)
	}
}

// checkStoreClosed closes s and checks its directory.
func checkStoreClosed(tb testing.TB, s *Store, dir string) CheckReport {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return checkStore(tb, dir, false)
}

// TestDamagedManifestIsRefused: a truncated or missing MANIFEST never
// opens as an empty store.
func TestDamagedManifestIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"truncated", func(t *testing.T, dir string) { truncateHalf(t, newest(t, dir, "MANIFEST-*")) }},
		{"emptied", func(t *testing.T, dir string) {
			if err := os.Truncate(newest(t, dir, "MANIFEST-*"), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, dir string) {
			files, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			markers, _ := filepath.Glob(filepath.Join(dir, "marker.manifest.*"))
			for _, f := range append(files, markers...) {
				os.Remove(f)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			populateStore(t, dir, 500, true)
			populateStore(t, dir, 500, true)  // a second flush: more MANIFEST records
			populateStore(t, dir, 500, false) // and events only in the write-ahead log
			tc.damage(t, dir)
			s, err := Open(dir, Options{})
			if err == nil {
				head := s.Head()
				s.Close()
				t.Fatalf("Open after the MANIFEST was %s: opened with head %d, want an error", tc.name, head)
			}
			var lost *LostEventsError
			if !errors.As(err, &lost) && !strings.Contains(err.Error(), "damaged") {
				t.Fatalf("Open after the MANIFEST was %s: %v, want lost events or damage reported", tc.name, err)
			}
			if rep := checkStore(t, dir, false); len(rep.Problems) == 0 {
				t.Fatalf("check found nothing wrong: %+v", rep)
			}
		})
	}
}

// TestDamagedTableFailsReadsNotTheProcess: a flipped byte in a table makes
// reads of it fail with an error (the engine's default would end the
// process), and check reports the damage.
func TestDamagedTableFailsReadsNotTheProcess(t *testing.T) {
	dir := t.TempDir()
	populateStore(t, dir, 3000, true)
	sst := newest(t, dir, "*.sst")
	b, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0xff // in the data blocks, before the index and footer
	if err := os.WriteFile(sst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v (the damage is in one data block; the store should open)", err)
	}
	defer s.Close()
	err = s.ReadAll(context.Background(), 0, false, Forwards, 0, Filter{}, func(Record) error { return nil })
	if err == nil {
		t.Fatal("reading every record through the damaged block succeeded")
	}
	s.Close()
	rep := checkStore(t, dir, true)
	if len(rep.Problems) == 0 || rep.Accepted {
		t.Fatalf("check: %+v, want the damaged table reported and not accepted", rep)
	}
}

// TestLostTableIsRefused: a MANIFEST that lost its last edit (the table a
// flush wrote) while the write-ahead log still holds the newest events
// brings back the log's end but not its middle; the store must not open
// with that hole. Check reports it, and accepting it lets the store open.
func TestLostTableIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 6000; i += 10 { // enough for the engine to flush a table once
		evs := events(i, 10)
		for j := range evs {
			evs[j].Data = make([]byte, 500)
		}
		if _, err := s.Append(ctx, "s", Expected{}, evs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	truncateHalf(t, newest(t, dir, "MANIFEST-*")) // tears the flush's edit
	s, err = Open(dir, Options{})
	if err == nil {
		head, n := s.Head(), len(readStream(t, s, "s"))
		s.Close()
		t.Fatalf("opened with head %d and %d of 6000 events, want the loss reported", head, n)
	}
	var lost *LostEventsError
	if !errors.As(err, &lost) || lost.Lost() == 0 || len(lost.Gaps) == 0 || !strings.Contains(err.Error(), "positions") {
		t.Fatalf("Open: got %v, want a *LostEventsError naming the missing positions", err)
	}
	rep := checkStore(t, dir, false)
	if !rep.Lossy || rep.Missing != lost.Missing {
		t.Fatalf("check: %+v, want %d missing events reported as a loss", rep, lost.Missing)
	}
	if rep = checkStore(t, dir, true); !rep.Accepted {
		t.Fatalf("check --accept-loss: %+v", rep)
	}
	s = openTest(t, dir)
	var n uint64
	if err := s.ReadAll(ctx, 0, false, Forwards, 0, Filter{}, func(Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != uint64(s.Head())-rep.Missing {
		t.Fatalf("read %d events after accepting, want %d", n, uint64(s.Head())-rep.Missing)
	}
	if _, err := s.Append(ctx, "after", Expected{}, events(9000, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir) // the accepted loss is remembered
	if s.Head() != Position(6001) {
		t.Fatalf("head %d after reopening, want 6001", s.Head())
	}
}
