package acceptance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore"
)

// The port suite: the same tests run against both implementations of the
// eventstore port (the application's only way to the store): the embedded
// store called in-process (eventstore.OpenEmbedded), and the official
// client over gRPC (eventstore.Connect) to a fresh embedded server, or to
// the EventStoreDB/KurrentDB in ORDO_ESDB_URL.

// implementation opens a Store for one test; it is closed at cleanup.
type implementation struct {
	name string
	open func(tb testing.TB) *eventstore.Store
}

var implementations = []implementation{
	{"in-process", openInProcess},
	{"gRPC", openGRPC},
}

func openInProcess(tb testing.TB) *eventstore.Store {
	tb.Helper()
	s, err := eventstore.OpenEmbedded(ctxT(tb), eventstore.EmbeddedConfig{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func openGRPC(tb testing.TB) *eventstore.Store {
	tb.Helper()
	s, err := eventstore.Connect(ctxT(tb), endpoint(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// eachImplementation runs test once per implementation, as subtests.
func eachImplementation(t *testing.T, test func(t *testing.T, s *eventstore.Store)) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) { test(t, impl.open(t)) })
	}
}

func portEvent(typ, data string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(data), Metadata: []byte(`{"command_id":"c-1"}`)}
}

func portEvents(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = portEvent("Thing", fmt.Sprintf(`{"i":%d}`, i))
	}
	return out
}

func mustAppend(tb testing.TB, s *eventstore.Store, stream string, exp eventstore.Expected, evs ...eventstore.EventData) eventstore.AppendResult {
	tb.Helper()
	r, err := s.Append(ctxT(tb), stream, exp, evs...)
	if err != nil {
		tb.Fatalf("append %d events to %s: %v", len(evs), stream, err)
	}
	return r
}

func readStream(tb testing.TB, s *eventstore.Store, stream string, from uint64) ([]eventstore.RecordedEvent, error) {
	tb.Helper()
	var out []eventstore.RecordedEvent
	err := s.ReadStream(ctxT(tb), stream, from, func(e eventstore.RecordedEvent) error { out = append(out, e); return nil })
	return out, err
}

func revisions(evs []eventstore.RecordedEvent) string {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Revision)
	}
	return fmt.Sprint(out)
}

func TestPortAppendExpectations(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		st := name("port-exp")
		tests := []struct {
			name    string
			exp     eventstore.Expected
			wantErr error
			wantRev uint64
		}{
			{"stream exists on a new stream", eventstore.StreamExists(), eventstore.ErrWrongExpectedRevision, 0},
			{"exact on a new stream", eventstore.Exact(0), eventstore.ErrWrongExpectedRevision, 0},
			{"no stream on a new stream", eventstore.NoStream(), nil, 0},
			{"no stream again", eventstore.NoStream(), eventstore.ErrWrongExpectedRevision, 0},
			{"exact current", eventstore.Exact(0), nil, 1},
			{"exact stale", eventstore.Exact(0), eventstore.ErrWrongExpectedRevision, 0},
			{"exact ahead", eventstore.Exact(7), eventstore.ErrWrongExpectedRevision, 0},
			{"stream exists", eventstore.StreamExists(), nil, 2},
			{"any", eventstore.Any(), nil, 3},
		}
		var last uint64
		for _, tt := range tests {
			r, err := s.Append(ctxT(t), st, tt.exp, portEvent("Thing", `{}`))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("%s: got %v, want %v", tt.name, err, tt.wantErr)
			}
			if err != nil {
				continue
			}
			if r.Revision != tt.wantRev || r.Position <= last {
				t.Fatalf("%s: got revision %d at position %d, want revision %d after position %d", tt.name, r.Revision, r.Position, tt.wantRev, last)
			}
			last = r.Position
		}
		if got, err := readStream(t, s, st, 0); err != nil || revisions(got) != "[0 1 2 3]" {
			t.Fatalf("the stream holds %s (%v), want [0 1 2 3]", revisions(got), err)
		}
		// An empty append changes nothing and says where the stream is, and
		// where the store stands (no earlier than the stream's last event).
		if r, err := s.Append(ctxT(t), st, eventstore.Any()); err != nil || r.Revision != 3 || r.Position < last {
			t.Fatalf("empty append: got %+v, %v; want revision 3 at a position from %d on", r, err, last)
		}
		if r, err := s.Append(ctxT(t), name("port-empty"), eventstore.Any()); err != nil || r.Revision != 0 || r.Position < last {
			t.Fatalf("empty append to a new stream: got %+v, %v; want revision 0 at a position from %d on", r, err, last)
		}
	})
}

// TestPortIdempotentAppend: an append repeated with the same event IDs is
// recognised (the command path relies on it after a lost reply): same
// result, nothing doubled; the same IDs after other events are a conflict.
func TestPortIdempotentAppend(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		st := name("port-idem")
		evs := portEvents(3)
		first := mustAppend(t, s, st, eventstore.NoStream(), evs...)
		for _, exp := range []eventstore.Expected{eventstore.NoStream(), eventstore.Any()} {
			if again, err := s.Append(ctxT(t), st, exp, evs...); err != nil || again != first {
				t.Fatalf("repeat with %+v: got %+v, %v; want %+v", exp, again, err, first)
			}
		}
		mustAppend(t, s, st, eventstore.Exact(2), portEvent("Other", `{}`))
		if again, err := s.Append(ctxT(t), st, eventstore.Exact(0), evs[1:]...); err != nil || again != first {
			t.Fatalf("repeat of the tail with its expected revision: got %+v, %v; want %+v", again, err, first)
		}
		if _, err := s.Append(ctxT(t), st, eventstore.Exact(1), evs[1:]...); !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			t.Fatalf("the same IDs at another revision: %v, want ErrWrongExpectedRevision", err)
		}
		if got, err := readStream(t, s, st, 0); err != nil || len(got) != 4 {
			t.Fatalf("the stream holds %d events (%v), want 4", len(got), err)
		}
	})
}

func TestPortReadStream(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		st := name("port-read")
		before := time.Now().Add(-time.Second)
		evs := portEvents(5)
		evs[2].Data, evs[2].Metadata = nil, nil // no data, no metadata
		res := mustAppend(t, s, st, eventstore.NoStream(), evs...)
		got, err := readStream(t, s, st, 0)
		if err != nil || len(got) != 5 {
			t.Fatalf("read: %d events, %v", len(got), err)
		}
		for i, e := range got {
			switch {
			case e.Stream != st || e.Revision != uint64(i) || e.ID != evs[i].ID || e.Type != evs[i].Type:
				t.Errorf("event %d: got %s@%d %s %s, want %s@%d %s %s", i, e.Stream, e.Revision, e.ID, e.Type, st, i, evs[i].ID, evs[i].Type)
			case string(e.Data) != string(evs[i].Data) || string(e.Metadata) != string(evs[i].Metadata):
				t.Errorf("event %d: data %q metadata %q, want %q %q", i, e.Data, e.Metadata, evs[i].Data, evs[i].Metadata)
			case i > 0 && e.Position <= got[i-1].Position:
				t.Errorf("event %d at position %d after %d", i, e.Position, got[i-1].Position)
			case e.Created.Before(before) || e.Created.After(time.Now().Add(time.Second)) || e.Created.Location() != time.UTC || e.Created.Nanosecond()%100 != 0:
				t.Errorf("event %d created %v: want UTC, now, to 100 ns", i, e.Created)
			}
		}
		if last := got[4]; last.Position != res.Position || res.Revision != 4 {
			t.Errorf("append said revision %d at %d; the last event is %d at %d", res.Revision, res.Position, last.Revision, last.Position)
		}
		if from3, err := readStream(t, s, st, 3); err != nil || revisions(from3) != "[3 4]" {
			t.Errorf("read from revision 3: %s, %v", revisions(from3), err)
		}
		if past, err := readStream(t, s, st, 50); err != nil || len(past) != 0 {
			t.Errorf("read past the end: %s, %v; want nothing", revisions(past), err)
		}
		var back []eventstore.RecordedEvent
		if err := s.ReadStreamBackwards(ctxT(t), st, 2, func(e eventstore.RecordedEvent) error { back = append(back, e); return nil }); err != nil || revisions(back) != "[4 3]" {
			t.Errorf("backwards: %s, %v; want [4 3]", revisions(back), err)
		}
		missing := name("port-missing")
		if _, err := readStream(t, s, missing, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Errorf("read a missing stream: %v, want ErrStreamNotFound", err)
		}
		if err := s.ReadStreamBackwards(ctxT(t), missing, 1, func(eventstore.RecordedEvent) error { return nil }); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Errorf("read a missing stream backwards: %v, want ErrStreamNotFound", err)
		}
		stop := errors.New("enough")
		n := 0
		if err := s.ReadStream(ctxT(t), st, 0, func(eventstore.RecordedEvent) error { n++; return stop }); err != stop || n != 1 {
			t.Errorf("fn's error: got %v after %d events, want it returned as is after 1", err, n)
		}
	})
}

// TestPortDeletes: a soft delete hides the stream until the next append,
// which continues the numbering; a tombstone is for good. Metadata (here
// $maxCount) is an append to the metastream on both implementations.
func TestPortDeletes(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		ctx := ctxT(t)
		st := name("port-del")
		mustAppend(t, s, st, eventstore.NoStream(), portEvents(3)...)
		if _, err := s.Delete(ctx, st, eventstore.Exact(1)); !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			t.Fatalf("delete at a stale revision: %v, want ErrWrongExpectedRevision", err)
		}
		pos, err := s.Delete(ctx, st, eventstore.Exact(2))
		if err != nil || pos == 0 {
			t.Fatalf("delete: %d, %v", pos, err)
		}
		if head, err := s.Head(ctx); err != nil || head < pos {
			t.Fatalf("head %d (%v) before the delete's record at %d", head, err, pos)
		}
		if _, err := readStream(t, s, st, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Fatalf("read a deleted stream: %v, want ErrStreamNotFound", err)
		}
		if r := mustAppend(t, s, st, eventstore.Any(), portEvent("Again", `{}`)); r.Revision != 3 {
			t.Fatalf("append after the delete: revision %d, want 3", r.Revision)
		}
		if got, err := readStream(t, s, st, 0); err != nil || revisions(got) != "[3]" {
			t.Fatalf("after delete and append: %s, %v; want [3]", revisions(got), err)
		}
		if _, err := s.Delete(ctx, name("port-never"), eventstore.Any()); !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
			t.Fatalf("delete a stream that never existed: %v, want ErrWrongExpectedRevision", err)
		}
		if _, err := s.Tombstone(ctx, st, eventstore.Any()); err != nil {
			t.Fatal(err)
		}
		if _, err := readStream(t, s, st, 0); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Fatalf("read a tombstoned stream: %v, want ErrStreamDeleted", err)
		}
		if _, err := s.Append(ctx, st, eventstore.Any(), portEvent("X", `{}`)); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Fatalf("append to a tombstoned stream: %v, want ErrStreamDeleted", err)
		}
		if _, err := s.Delete(ctx, st, eventstore.Any()); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Fatalf("delete a tombstoned stream: %v, want ErrStreamDeleted", err)
		}

		capped := name("port-capped")
		mustAppend(t, s, capped, eventstore.NoStream(), portEvents(5)...)
		mustAppend(t, s, "$$"+capped, eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "$metadata", Data: []byte(`{"$maxCount":2}`)})
		if got, err := readStream(t, s, capped, 0); err != nil || revisions(got) != "[3 4]" {
			t.Fatalf("with $maxCount 2: %s, %v; want [3 4]", revisions(got), err)
		}
	})
}

func TestPortAppendTooLarge(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		big := portEvent("Big", `{}`)
		big.Data = []byte(`"` + strings.Repeat("x", 2<<20) + `"`)
		if _, err := s.Append(ctxT(t), name("port-big"), eventstore.Any(), big); !errors.Is(err, eventstore.ErrAppendTooLarge) {
			t.Fatalf("a 2 MiB append: %v, want ErrAppendTooLarge", err)
		}
		fits := portEvent("Fits", `"`+strings.Repeat("x", 500<<10)+`"`)
		mustAppend(t, s, name("port-fits"), eventstore.Any(), fits)
	})
}

// appendMixed appends n events to order-, sku- and other streams of run,
// with a soft delete in the middle (a "$metadata" system record in $all),
// and returns the user events in $all order.
func appendMixed(tb testing.TB, s *eventstore.Store, run string, n int) []eventstore.RecordedEvent {
	tb.Helper()
	var want []eventstore.RecordedEvent
	for i := range n {
		st := fmt.Sprintf("%s-%s-%d", []string{"order", "sku", "other"}[i%3], run, i%7)
		e := portEvent([]string{"Placed", "Added", "Noted"}[i%3], fmt.Sprintf(`{"i":%d}`, i))
		r := mustAppend(tb, s, st, eventstore.Any(), e)
		want = append(want, eventstore.RecordedEvent{Stream: st, Revision: r.Revision, Position: r.Position, ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata})
		if i == n/2 {
			if _, err := s.Delete(ctxT(tb), fmt.Sprintf("other-%s-%d", run, 2), eventstore.Any()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return want
}

// sameEvents compares what a read returned with what was appended
// (Created aside: the appender does not know it).
func sameEvents(got, want []eventstore.RecordedEvent) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		g.Created = time.Time{}
		if g.Stream != w.Stream || g.Revision != w.Revision || g.Position != w.Position || g.ID != w.ID || g.Type != w.Type ||
			string(g.Data) != string(w.Data) || string(g.Metadata) != string(w.Metadata) {
			return fmt.Sprintf("event %d: got %s@%d (%d) %s, want %s@%d (%d) %s", i, g.Stream, g.Revision, g.Position, g.Type, w.Stream, w.Revision, w.Position, w.Type)
		}
	}
	return ""
}

// TestPortReadAll: ReadAll and ScanAll return the user events of $all in
// order from a position on, with the filter applied and system records
// left out.
func TestPortReadAll(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		run := uuid.NewString()[:8]
		all := appendMixed(t, s, run, 60)
		from := all[0].Position
		ours := func(e eventstore.RecordedEvent) bool { return strings.Contains(e.Stream, run) }
		for _, tt := range []struct {
			name   string
			filter eventstore.Filter
			keep   func(eventstore.RecordedEvent) bool
		}{
			{"everything", eventstore.Filter{}, ours},
			{"stream prefixes", eventstore.Filter{StreamPrefixes: []string{"order-" + run, "sku-" + run}},
				func(e eventstore.RecordedEvent) bool { return ours(e) && !strings.HasPrefix(e.Stream, "other-") }},
			{"stream regex", eventstore.Filter{StreamRegex: "^sku-" + run}, func(e eventstore.RecordedEvent) bool { return strings.HasPrefix(e.Stream, "sku-"+run) }},
			{"event type prefix", eventstore.Filter{EventTypePrefixes: []string{"Plac"}}, func(e eventstore.RecordedEvent) bool { return ours(e) && e.Type == "Placed" }},
			{"event type regex", eventstore.Filter{EventTypeRegex: "ote"}, func(e eventstore.RecordedEvent) bool { return ours(e) && e.Type == "Noted" }},
		} {
			want := slices.DeleteFunc(slices.Clone(all), func(e eventstore.RecordedEvent) bool { return !tt.keep(e) })
			for _, read := range []struct {
				name string
				fn   func(context.Context, uint64, eventstore.Filter, func(eventstore.RecordedEvent) error) error
			}{{"ReadAll", s.ReadAll}, {"ScanAll", s.ScanAll}} {
				var got []eventstore.RecordedEvent
				err := read.fn(ctxT(t), from, tt.filter, func(e eventstore.RecordedEvent) error {
					if strings.HasPrefix(e.Type, "$") {
						return fmt.Errorf("system event %s@%d delivered", e.Stream, e.Revision)
					}
					if tt.keep(e) {
						got = append(got, e)
					} else if ours(e) {
						return fmt.Errorf("the filter let %s %s through", e.Stream, e.Type)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("%s, %s: %v", read.name, tt.name, err)
				}
				if diff := sameEvents(got, want); diff != "" {
					t.Errorf("%s, %s: %s", read.name, tt.name, diff)
				}
			}
		}
		// From is inclusive.
		var got []eventstore.RecordedEvent
		if err := s.ReadAll(ctxT(t), all[10].Position, eventstore.Filter{}, func(e eventstore.RecordedEvent) error {
			if ours(e) {
				got = append(got, e)
			}
			return nil
		}); err != nil || sameEvents(got, all[10:]) != "" {
			t.Errorf("ReadAll from the 11th event: %s, %v", sameEvents(got, all[10:]), err)
		}
		if err := s.ReadAll(ctxT(t), 0, eventstore.Filter{StreamRegex: "("}, func(eventstore.RecordedEvent) error { return nil }); err == nil {
			t.Error("ReadAll with a malformed regex must fail")
		}
		if _, err := s.SubscribeAll(ctxT(t), eventstore.SubscribeOptions{Filter: eventstore.Filter{EventTypeRegex: "("}}); err == nil {
			t.Error("SubscribeAll with a malformed regex must fail")
		}
	})
}

// TestPortSubscribeAll: a filtered subscription delivers the matching
// events in order from after a position, checkpoints, news of catching
// up, then live events; it honours its context.
func TestPortSubscribeAll(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		run := uuid.NewString()[:8]
		all := appendMixed(t, s, run, 30)
		prefix := "order-" + run
		var want []eventstore.RecordedEvent
		for _, e := range all[1:] {
			if strings.HasPrefix(e.Stream, prefix) {
				want = append(want, e)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sub, err := s.SubscribeAll(ctx, eventstore.SubscribeOptions{From: all[0].Position,
			Filter: eventstore.Filter{StreamPrefixes: []string{prefix}}, CheckpointInterval: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var got []eventstore.RecordedEvent
		checkpoints, caughtUp := 0, false
		var lastCheckpoint uint64
		sentLive := false
		for !sentLive || len(got) < len(want) {
			if caughtUp && !sentLive && len(got) == len(want) {
				sentLive = true
				live := mustAppend(t, s, prefix+"-live", eventstore.NoStream(), portEvent("Live", `{}`))
				want = append(want, eventstore.RecordedEvent{Stream: prefix + "-live", Position: live.Position})
			}
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("after %d events: %v", len(got), err)
			}
			switch {
			case m.Event != nil:
				got = append(got, *m.Event)
			case m.CaughtUp:
				caughtUp = true
			default:
				if m.Checkpoint < lastCheckpoint {
					t.Fatalf("checkpoint %d after %d", m.Checkpoint, lastCheckpoint)
				}
				lastCheckpoint = m.Checkpoint
				checkpoints++
			}
		}
		if diff := sameEvents(got[:len(want)-1], want[:len(want)-1]); diff != "" {
			t.Errorf("caught up: %s", diff)
		}
		if live := got[len(got)-1]; live.Stream != prefix+"-live" || live.Position != want[len(want)-1].Position {
			t.Errorf("live event: got %s at %d", live.Stream, live.Position)
		}
		if checkpoints < len(all)/2/2 {
			t.Errorf("%d checkpoints over %d records with an interval of 2", checkpoints, len(all))
		}
		// Next honours its context: an expired one ends the call and the
		// subscription.
		short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
		defer stop()
		if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next with an expiring context: %v", err)
		}
		if _, err := sub.Next(ctx); err == nil {
			t.Fatal("Next after the subscription ended returned no error")
		}
	})
}

// TestPortSubscribeUnfiltered: without a filter a subscription delivers
// every record from the start, system records too, and no checkpoints.
func TestPortSubscribeUnfiltered(t *testing.T) {
	if os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("reads a whole $all from the start, which a shared server makes long")
	}
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		run := uuid.NewString()[:8]
		all := appendMixed(t, s, run, 9)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sub, err := s.SubscribeAll(ctx, eventstore.SubscribeOptions{FromStart: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		var types []string
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.CaughtUp {
				break
			}
			if m.Event == nil {
				t.Fatalf("a checkpoint (%d) without a filter", m.Checkpoint)
			}
			types = append(types, m.Event.Type)
		}
		if len(types) != len(all)+1 || !slices.Contains(types, "$metadata") {
			t.Fatalf("got %d records %v, want the %d events and the delete's $metadata", len(types), types, len(all))
		}
	})
}

// TestPortConcurrentWriters: writers racing on one stream with expected
// revisions never lose an update: every revision is written once, and
// every writer learns of each conflict.
func TestPortConcurrentWriters(t *testing.T) {
	eachImplementation(t, func(t *testing.T, s *eventstore.Store) {
		st := name("port-race")
		mustAppend(t, s, st, eventstore.NoStream(), portEvent("Start", `{}`))
		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < each; {
					var last uint64
					err := s.ReadStreamBackwards(ctxT(t), st, 1, func(e eventstore.RecordedEvent) error { last = e.Revision; return nil })
					if err == nil {
						_, err = s.Append(ctxT(t), st, eventstore.Exact(last), portEvent("Inc", fmt.Sprintf(`{"w":%d}`, w)))
					}
					switch {
					case err == nil:
						done++
					case !errors.Is(err, eventstore.ErrWrongExpectedRevision):
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got, err := readStream(t, s, st, 0); err != nil || len(got) != 1+writers*each {
			t.Fatalf("%d events (%v), want %d", len(got), err, 1+writers*each)
		}
	})
}

// TestPortContextAndClose: an ended context ends an operation with its
// error (a deadline also as ErrUnavailable); a closed store answers
// ErrUnavailable.
func TestPortContextAndClose(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			s := impl.open(t)
			st := name("port-ctx")
			mustAppend(t, s, st, eventstore.NoStream(), portEvent("A", `{}`))
			expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			if _, err := s.Append(expired, st, eventstore.Any(), portEvent("B", `{}`)); !errors.Is(err, eventstore.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("append with an expired deadline: %v, want ErrUnavailable and context.DeadlineExceeded", err)
			}
			cancelled, cancel2 := context.WithCancel(context.Background())
			cancel2()
			if err := s.ReadStream(cancelled, st, 0, func(eventstore.RecordedEvent) error { return nil }); !errors.Is(err, context.Canceled) {
				t.Errorf("read with a cancelled context: %v, want context.Canceled", err)
			}
			s.Close()
			if _, err := s.Append(ctxT(t), st, eventstore.Any(), portEvent("C", `{}`)); !errors.Is(err, eventstore.ErrUnavailable) {
				t.Errorf("append after Close: %v, want ErrUnavailable", err)
			}
			if _, err := s.Head(ctxT(t)); !errors.Is(err, eventstore.ErrUnavailable) {
				t.Errorf("head after Close: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestPortConnectFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := eventstore.Connect(ctx, "not a url"); err == nil {
		t.Fatal("a malformed URL must fail")
	}
	start := time.Now()
	if _, err := eventstore.Connect(ctx, "esdb://127.0.0.1:1?tls=false"); err == nil || time.Since(start) > 15*time.Second {
		t.Fatalf("nothing listening: %v after %v, want an error within the connect timeout", err, time.Since(start))
	}
}
