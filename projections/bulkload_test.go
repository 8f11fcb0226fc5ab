package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
)

// appendInterleaved writes every order case copies times, one event per
// append, taking the orders' histories in turns, so each order's events
// are spread over the whole log (as in live traffic) and a rebuild's
// chunks cut through every history: refunds settle chunks after they were
// requested, payments land on orders placed chunks before. It returns the
// orders' IDs (copies of orderCases in turn) and the head.
func appendInterleaved(tb testing.TB, es *eventstore.Store, copies int) ([]string, uint64) {
	tb.Helper()
	type order struct {
		id   string
		evs  int
		next int
	}
	var orders []*order
	var ids []string
	for range copies {
		for _, c := range orderCases {
			id := uuid.NewString()
			ids = append(ids, id)
			orders = append(orders, &order{id: id, evs: len(c.events(id))})
		}
	}
	var head uint64
	for left := len(orders); left > 0; {
		for i, o := range orders {
			if o.next == o.evs {
				continue
			}
			ev := orderCases[i%len(orderCases)].events(o.id)[o.next]
			exp := eventstore.NoStream()
			if o.next > 0 {
				exp = eventstore.Exact(uint64(o.next - 1))
			}
			head = appendEvents(tb, es, o.id, exp, ev)
			if o.next++; o.next == o.evs {
				left--
			}
		}
	}
	return ids, head
}

// TestRebuildLoadAcrossChunks rebuilds interleaved histories with chunks
// of a few events, so every order's row is written, read back and written
// again across chunks; the rebuild equals the live read model row by row.
// Then a rebuild interrupted part-way through its load resumes from its
// checkpoint and equals it too.
func TestRebuildLoadAcrossChunks(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		ids, head := appendInterleaved(t, es, 3)
		total := int64(3) * caseEvents()
		m := tg.openManager(t, es)
		defer func() { m.Close() }()
		live, liveRunner := m.Current()
		if err := liveRunner.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		want := dump(t, live, ids)
		defer projections.SetLoadChunks(3, 7)()

		compare := func(what string) {
			t.Helper()
			store, r := m.Current()
			if store == live {
				t.Fatalf("%s: the rebuild did not swap in new read models", what)
			}
			got := dump(t, store, ids)
			for k := range want {
				if got[k] != want[k] {
					t.Errorf("%s: %s differs:\nlive:    %s\nrebuilt: %s", what, k, want[k], got[k])
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s: %d rows, the live read model %d", what, len(got), len(want))
			}
			if n := r.Status(ctx).Events; n != total {
				t.Errorf("%s: %d events applied, want %d", what, n, total)
			}
		}
		if err := rebuild(ctx, m); err != nil {
			t.Fatal(err)
		}
		compare("rebuild in chunks")
		live, _ = m.Current()

		// Interrupt the next rebuild once its load has committed a chunk.
		short, cancel := context.WithCancel(ctx)
		var stoppedAt int64
		err := m.Rebuild(short, projections.RebuildOptions{Interval: time.Millisecond, Progress: func(p projections.RebuildProgress) {
			if p.Events > 0 && stoppedAt == 0 {
				stoppedAt = p.Events
				cancel()
			}
		}})
		cancel()
		if err == nil {
			t.Fatal("the rebuild finished before it could be interrupted")
		}
		if now, _ := m.Current(); now != live {
			t.Fatal("an interrupted rebuild swapped the read models")
		}
		if stoppedAt >= total {
			t.Fatalf("interrupted after all %d events, want part-way", stoppedAt)
		}
		if err := m.Rebuild(ctx, projections.RebuildOptions{}); err != nil {
			t.Fatal(err)
		}
		compare("resumed rebuild")
		t.Logf("interrupted after %d of %d events", stoppedAt, total)
	})
}
