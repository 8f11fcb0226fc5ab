package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestReadStatesNeverServeStale drives the cache through the orders in
// which a reader's put and the writer's touch can interleave: a state is
// served only to a reader whose head is at or past it and past every
// write to the stream.
func TestReadStatesNeverServeStale(t *testing.T) {
	st := func(last int64) streamState { return streamState{last: last} }
	type step struct {
		op   string // put, touch (a mark), write (the writer's state) or get
		pos  Position
		last int64 // put: the state's last revision; get: the one wanted, -2 for a miss
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a state serves readers at or past it", []step{
			{"put", 5, 3}, {"get", 5, 3}, {"get", 9, 3},
		}},
		{"a reader behind the state misses", []step{
			{"put", 5, 3}, {"get", 4, -2},
		}},
		{"a write after the state hides it", []step{
			{"put", 5, 3}, {"touch", 7, 0}, {"get", 7, -2}, {"get", 9, -2},
		}},
		{"a state computed before a write is not stored", []step{
			{"touch", 7, 0}, {"put", 5, 3}, {"get", 9, -2},
		}},
		{"a state computed after the write replaces its mark", []step{
			{"touch", 7, 0}, {"put", 7, 4}, {"get", 7, 4}, {"get", 6, -2},
		}},
		{"an older state never replaces a newer one", []step{
			{"put", 9, 5}, {"put", 5, 3}, {"get", 9, 5},
		}},
		{"the writer's state serves readers at or past its write", []step{
			{"write", 7, 4}, {"get", 6, -2}, {"get", 7, 4}, {"get", 9, 4},
		}},
		{"a reader's state older than the writer's is not stored", []step{
			{"write", 7, 4}, {"put", 5, 3}, {"get", 9, 4},
		}},
		{"a later write replaces the writer's state", []step{
			{"write", 7, 4}, {"touch", 8, 0}, {"get", 9, -2}, {"write", 9, 6}, {"get", 9, 6},
		}},
		{"a newer state replaces an older one", []step{
			{"put", 5, 3}, {"put", 9, 3}, {"get", 8, -2}, {"get", 9, 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newReadStates()
			for i, s := range tt.steps {
				switch s.op {
				case "put":
					rs.put("a", st(s.last), s.pos)
				case "write":
					w := st(s.last)
					rs.touch("a", s.pos, &w)
				case "touch":
					rs.touch("a", s.pos, nil)
				case "get":
					got, ok := rs.get("a", s.pos)
					switch {
					case s.last == -2 && ok:
						t.Fatalf("step %d: get at %d served last=%d, want a miss", i, s.pos, got.last)
					case s.last != -2 && !ok:
						t.Fatalf("step %d: get at %d missed, want last=%d", i, s.pos, s.last)
					case ok && got.last != s.last:
						t.Fatalf("step %d: get at %d served last=%d, want %d", i, s.pos, got.last, s.last)
					}
				}
			}
		})
	}
}

// TestReadStatesStayBounded: a full shard is emptied, and a state computed
// before a touch the shard forgot is not stored after it.
func TestReadStatesStayBounded(t *testing.T) {
	rs := newReadStates()
	sh := rs.shard("victim")
	var same []string
	for i := 0; len(same) < readStatesPerShard; i++ {
		if name := fmt.Sprintf("s-%d", i); rs.shard(name) == sh {
			same = append(same, name)
		}
	}
	// The victim's state is computed at 5; a write to it at 6 is marked,
	// then enough other streams are written that the mark is forgotten.
	rs.touch("victim", 6, nil)
	for i, name := range same {
		rs.touch(name, Position(7+i), nil)
	}
	if n := len(sh.m); n > readStatesPerShard {
		t.Fatalf("shard holds %d entries, bound %d", n, readStatesPerShard)
	}
	if _, marked := sh.m["victim"]; marked {
		t.Fatal("the victim's mark should have been forgotten for this test to mean anything")
	}
	rs.put("victim", streamState{last: 1}, 5)
	if got, ok := rs.get("victim", Position(7+len(same))); ok {
		t.Fatalf("served a state computed at 5 after a forgotten write at 6: last=%d", got.last)
	}
	rs.put("victim", streamState{last: 2}, Position(7+len(same)))
	if got, ok := rs.get("victim", Position(7+len(same))); !ok || got.last != 2 {
		t.Fatalf("a state computed after every write: got %+v, %v", got, ok)
	}
}

// TestStreamReadsSeeEveryAcknowledgedWrite races readers against writers
// and metadata changes: a read that starts after an append was
// acknowledged must see it, and one that starts after a $maxCount was
// acknowledged must honour it, cache or not.
func TestStreamReadsSeeEveryAcknowledgedWrite(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	const streams, appends = 4, 200
	var acked [streams]atomic.Int64
	for i := range acked {
		acked[i].Store(-1)
	}
	var wg sync.WaitGroup
	for w := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("acked-%d", w)
			for i := range appends {
				r, err := s.Append(ctx, stream, Expected{Kind: ExpectAny}, events(w*appends+i, 1))
				if err != nil {
					t.Error(err)
					return
				}
				acked[w].Store(int64(r.Revision))
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var reads int
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		for w := range streams {
			want := acked[w].Load()
			got := int64(-1)
			err := s.ReadStream(ctx, fmt.Sprintf("acked-%d", w), 0, true, Backwards, 1, func(r Record) error {
				got = int64(r.Revision)
				return nil
			})
			if err != nil && !errors.Is(err, ErrStreamNotFound) {
				<-done
				t.Fatal(err)
			}
			if got < want {
				<-done
				t.Fatalf("a read that started after revision %d of acked-%d was acknowledged saw %d", want, w, got)
			}
			reads++
		}
	}
	t.Logf("%d reads racing %d appends", reads, streams*appends)

	// Metadata written after the stream's state was cached changes what a
	// read returns at once.
	if got := len(readStream(t, s, "acked-0")); got != appends {
		t.Fatalf("acked-0 holds %d events, want %d", got, appends)
	}
	meta := ProposedEvent{ID: id(1 << 20), Type: "$metadata", IsJSON: true, Data: []byte(`{"$maxCount":2}`)}
	if _, err := s.Append(ctx, "$$acked-0", Expected{}, []ProposedEvent{meta}); err != nil {
		t.Fatal(err)
	}
	if got := readStream(t, s, "acked-0"); len(got) != 2 || got[1].Revision != appends-1 {
		t.Fatalf("after $maxCount 2 a read returned %d events", len(got))
	}
	if _, err := s.Tombstone(ctx, "acked-1", Expected{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReadStream(ctx, "acked-1", 0, false, Forwards, 0, func(Record) error { return nil }); !errors.Is(err, ErrStreamDeleted) {
		t.Fatalf("read after a tombstone of a cached stream: %v, want ErrStreamDeleted", err)
	}
}
