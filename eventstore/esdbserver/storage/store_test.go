package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func openTest(tb testing.TB, dir string) *Store {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	s, err := Open(dir, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func id(n int) [16]byte {
	var b [16]byte
	b[0], b[1], b[2], b[15] = byte(n>>16), byte(n>>8), byte(n), 1
	return b
}

func events(start, n int) []ProposedEvent {
	out := make([]ProposedEvent, n)
	for i := range out {
		out[i] = ProposedEvent{ID: id(start + i), Type: "Thing", IsJSON: true, Data: []byte(fmt.Sprintf(`{"n":%d}`, start+i))}
	}
	return out
}

func readStream(tb testing.TB, s *Store, stream string) []Record {
	tb.Helper()
	var out []Record
	err := s.ReadStream(context.Background(), stream, 0, false, Forwards, 0, func(r Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil && !errors.Is(err, ErrStreamNotFound) {
		tb.Fatal(err)
	}
	return out
}

func TestExpectedRevisionForms(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	wev := func(err error) bool { var w *WrongExpectedVersionError; return errors.As(err, &w) }

	if _, err := s.Append(ctx, "a", Expected{Kind: ExpectStreamExists}, events(0, 1)); !wev(err) {
		t.Fatalf("StreamExists on a new stream: got %v, want WEV", err)
	}
	if _, err := s.Append(ctx, "a", Expected{Kind: ExpectRevision, Revision: 0}, events(0, 1)); !wev(err) {
		t.Fatalf("exact 0 on a new stream: got %v, want WEV", err)
	}
	r, err := s.Append(ctx, "a", Expected{Kind: ExpectNoStream}, events(0, 2))
	if err != nil || r.Revision != 1 || r.Position != 2 {
		t.Fatalf("NoStream on a new stream: %+v %v", r, err)
	}
	if _, err := s.Append(ctx, "a", Expected{Kind: ExpectNoStream}, events(10, 1)); !wev(err) {
		t.Fatalf("NoStream on an existing stream: got %v", err)
	}
	if r, err := s.Append(ctx, "a", Expected{Kind: ExpectRevision, Revision: 1}, events(2, 1)); err != nil || r.Revision != 2 {
		t.Fatalf("exact 1: %+v %v", r, err)
	}
	if _, err := s.Append(ctx, "a", Expected{Kind: ExpectRevision, Revision: 5}, events(20, 1)); !wev(err) {
		t.Fatalf("exact beyond current: %v", err)
	}
	if r, err := s.Append(ctx, "a", Expected{Kind: ExpectStreamExists}, events(3, 1)); err != nil || r.Revision != 3 {
		t.Fatalf("StreamExists: %+v %v", r, err)
	}
	if r, err := s.Append(ctx, "a", Expected{Kind: ExpectAny}, events(4, 1)); err != nil || r.Revision != 4 {
		t.Fatalf("Any: %+v %v", r, err)
	}
	var w *WrongExpectedVersionError
	_, err = s.Append(ctx, "a", Expected{Kind: ExpectRevision, Revision: 9}, events(30, 1))
	if !errors.As(err, &w) || w.CurrentNoStream || w.Current != 4 {
		t.Fatalf("WEV details: %+v", w)
	}
}

func TestIdempotentReappend(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	first, err := s.Append(ctx, "a", Expected{Kind: ExpectNoStream}, events(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, exp := range []Expected{{Kind: ExpectNoStream}, {Kind: ExpectAny}, {Kind: ExpectStreamExists}} {
		again, err := s.Append(ctx, "a", exp, events(0, 3))
		if err != nil || again != first {
			t.Fatalf("re-append with %v: got %+v %v, want the original %+v", exp.Kind, again, err, first)
		}
	}
	var w *WrongExpectedVersionError
	if _, err := s.Append(ctx, "a", Expected{Kind: ExpectNoStream}, append(events(0, 2), events(99, 1)...)); !errors.As(err, &w) {
		t.Fatalf("partial match must be WEV, got %v", err)
	}
	if got := readStream(t, s, "a"); len(got) != 3 {
		t.Fatalf("stream has %d events after re-appends, want 3", len(got))
	}
	// exact revision: the same events after revision 0 again
	again, err := s.Append(ctx, "a", Expected{Kind: ExpectRevision, Revision: 0}, events(1, 2))
	if err != nil || again != first {
		t.Fatalf("exact re-append: %+v %v", again, err)
	}
}

func TestDeleteAndTombstone(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	if _, err := s.Delete(ctx, "none", Expected{}); err == nil {
		t.Fatal("deleting a stream that never existed must fail")
	}
	s.Append(ctx, "a", Expected{}, events(0, 3))
	pos, err := s.Delete(ctx, "a", Expected{Kind: ExpectRevision, Revision: 2})
	if err != nil || pos == 0 {
		t.Fatalf("delete: %d %v", pos, err)
	}
	if err := s.ReadStream(ctx, "a", 0, false, Forwards, 0, func(Record) error { return nil }); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("read after soft delete: %v", err)
	}
	r, err := s.Append(ctx, "a", Expected{}, events(10, 1))
	if err != nil || r.Revision != 3 {
		t.Fatalf("append after soft delete continues at 3: %+v %v", r, err)
	}
	if got := readStream(t, s, "a"); len(got) != 1 || got[0].Revision != 3 {
		t.Fatalf("after soft delete and append, read %d records", len(got))
	}
	if _, err := s.Tombstone(ctx, "a", Expected{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", Expected{}, events(20, 1)); !errors.Is(err, ErrStreamDeleted) {
		t.Fatalf("append after tombstone: %v", err)
	}
	if err := s.ReadStream(ctx, "a", 0, false, Forwards, 0, func(Record) error { return nil }); !errors.Is(err, ErrStreamDeleted) {
		t.Fatalf("read after tombstone: %v", err)
	}
}

func TestReadAllDirections(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	for i := 0; i < 10; i++ {
		s.Append(ctx, fmt.Sprintf("s-%d", i%3), Expected{}, events(i, 1))
	}
	collect := func(from Position, fromEnd bool, dir Direction, max uint64) []Position {
		var out []Position
		if err := s.ReadAll(ctx, from, fromEnd, dir, max, Filter{}, func(r Record) error { out = append(out, r.Position); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := collect(4, false, Forwards, 3); fmt.Sprint(got) != "[4 5 6]" {
		t.Fatalf("forwards from 4: %v", got)
	}
	if got := collect(4, false, Backwards, 0); fmt.Sprint(got) != "[3 2 1]" {
		t.Fatalf("backwards from 4 (exclusive): %v", got)
	}
	if got := collect(0, true, Backwards, 2); fmt.Sprint(got) != "[10 9]" {
		t.Fatalf("backwards from end: %v", got)
	}
	if got := collect(0, true, Forwards, 0); len(got) != 0 {
		t.Fatalf("forwards from end: %v", got)
	}
}

// TestSubscriptionsUnderConcurrentAppends starts subscribers at random
// moments while writers append; each must see every record exactly once,
// in order, including a slow one that falls behind the live buffer.
func TestSubscriptionsUnderConcurrentAppends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := Open(dir, Options{SubscriptionBuffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, perWriter = 8, 300
	total := Position(writers * perWriter)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := s.Append(ctx, fmt.Sprintf("w-%d", w), Expected{}, events(w*perWriter+i, 1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	check := func(name string, slow bool) {
		defer wg.Done()
		sub, err := s.SubscribeAll(ctx, SubscribeAllOptions{FromStart: true})
		if err != nil {
			t.Error(err)
			return
		}
		defer sub.Close()
		var next Position = 1
		for next <= total {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Errorf("%s: %v after %d", name, err, next-1)
				return
			}
			if m.Kind != MessageRecord {
				continue
			}
			if m.Record.Position != next {
				t.Errorf("%s: got position %d, want %d (gap or duplicate)", name, m.Record.Position, next)
				return
			}
			next++
			if slow && next%50 == 0 {
				time.Sleep(time.Millisecond) // a slow consumer, to overflow the live buffer
			}
		}
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go check(fmt.Sprintf("sub-%d", i), i == 0)
	}
	wg.Wait()
}

// TestRepeatWithinOneGroup re-appends events while the original append may
// still be in the same commit group: the repeat must be recognised against
// the not yet committed records, not fail reading them from disk.
func TestRepeatWithinOneGroup(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		stream := fmt.Sprintf("g-%d", i)
		evs := events(i*10, 2)
		for j := 0; j < 3; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.Append(ctx, stream, Expected{Kind: ExpectNoStream}, evs)
				if err != nil || r.Revision != 1 {
					t.Errorf("%s attempt %d: %+v %v", stream, j, r, err)
				}
			}()
		}
	}
	wg.Wait()
	for i := 0; i < 200; i++ {
		if got := readStream(t, s, fmt.Sprintf("g-%d", i)); len(got) != 2 {
			t.Fatalf("g-%d has %d events, want 2", i, len(got))
		}
	}
}

// TestStreamReadsStopAtDurableHead: pebble makes a batch visible before its
// WAL sync returns, so a stream read racing a group commit could see records
// a crash would still lose. Every record a read returns, and every state a
// stream read reports, must be at or below the durable head.
func TestStreamReadsStopAtDurableHead(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	const writers, appends = 8, 150
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appends {
				if _, err := s.Append(ctx, "hot", Expected{Kind: ExpectAny}, events(w*appends+i, 1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var reads, seen int
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		for _, dir := range []Direction{Forwards, Backwards} {
			err := s.ReadStream(ctx, "hot", 0, dir == Backwards, dir, 0, func(r Record) error {
				seen++
				if head := s.Head(); r.Position > head {
					return fmt.Errorf("read %s@%d at position %d beyond the durable head %d", r.Stream, r.Revision, r.Position, head)
				}
				return nil
			})
			if err != nil && !errors.Is(err, ErrStreamNotFound) {
				<-done
				t.Fatal(err)
			}
		}
	}
	if got := len(readStream(t, s, "hot")); got != writers*appends {
		t.Fatalf("stream holds %d events, want %d", got, writers*appends)
	}
	t.Logf("%d reads racing %d appends saw %d records", reads, writers*appends, seen)
}
