package projections_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
)

// TestCheckpointBeyondHeadRefused: read models that applied events the
// event store no longer has (it lost them, or it is another store) are
// refused at start with the reason, instead of waiting in silence for
// positions that new events reuse — and start again once the right store
// is back.
func TestCheckpointBeyondHeadRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		head := fillOrders(t, es, 20)
		m := tg.openManager(t, es)
		if _, r := m.Current(); r.WaitFor(ctx, head) != nil {
			t.Fatal("the projection did not catch up")
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}

		other := openEventStore(t) // e.g. a store restored from an older backup
		id := uuid.NewString()
		otherHead := appendEvents(t, other, id, eventstore.NoStream(), placed(id))
		m = tg.openManager(t, other)
		_, r := m.Current()
		waitStatus(t, ctx, m, "the refusal", func(s projections.Status) bool { return s.Error != "" })
		st := r.Status(ctx)
		want := "projection checkpoint " + itoa(head)
		if st.Running || st.Resuming || st.CaughtUp || !strings.Contains(st.Error, want) ||
			!strings.Contains(st.Error, "beyond the event store's head "+itoa(otherHead)) || !strings.Contains(st.Error, "ordo replay --all") {
			t.Errorf("status over a store behind the checkpoint: %+v; want stopped, not caught up, %q… beyond the head %d", st, want, otherHead)
		}
		if err := r.WaitFor(ctx, otherHead); !errors.Is(err, projections.ErrStopped) {
			t.Errorf("waiting on a refused projection: %v, want ErrStopped at once", err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}

		// The refusal is not stored: with its own store back, it runs.
		m = tg.openManager(t, es)
		defer m.Close()
		_, r = m.Current()
		if err := r.WaitCaughtUp(ctx); err != nil {
			t.Fatalf("over its own store again: %v", err)
		}
		if st := r.Status(ctx); st.Error != "" || st.Events != 100 {
			t.Errorf("status over its own store again: %+v", st)
		}
	})
}

// TestCheckpointBeyondHeadResumesAfterLastEvent: when only the checkpoint
// is beyond the head — the store lost events of other streams after the
// last order event the read models applied — nothing they applied is
// missing, and the projection resumes after that event, so order events
// appended since, at the positions the lost events had, are applied
// rather than skipped.
func TestCheckpointBeyondHeadResumesAfterLastEvent(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		id := uuid.NewString()
		order := []domain.EventData{placed(id), domain.StockReserved{}}
		lastOrderEvent := appendEvents(t, es, id, eventstore.NoStream(), order...)
		appendOtherEvents(t, es, 300)
		m := tg.openManager(t, es)
		_, r := m.Current()
		if err := r.WaitCaughtUp(ctx); err != nil {
			t.Fatal(err)
		}
		checkpoint := r.Status(ctx).Position
		if checkpoint <= lastOrderEvent {
			t.Fatalf("the checkpoint %d did not move past the last order event %d; the test needs it to", checkpoint, lastOrderEvent)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}

		// The same order events at the same positions, without the rest,
		// and then a new order at positions the lost events had.
		restored := openEventStore(t)
		if pos := appendEvents(t, restored, id, eventstore.NoStream(), order...); pos != lastOrderEvent {
			t.Fatalf("the restored order ends at %d, not %d", pos, lastOrderEvent)
		}
		late := uuid.NewString()
		if pos := appendEvents(t, restored, late, eventstore.NoStream(), placed(late)); pos >= checkpoint {
			t.Fatalf("the new order is at %d, beyond the checkpoint %d; the test needs it before", pos, checkpoint)
		}
		m = tg.openManager(t, restored)
		defer m.Close()
		store, r := m.Current()
		if err := r.WaitCaughtUp(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := store.GetOrder(ctx, late); err != nil {
			t.Fatalf("the order appended after the lost events: %v (status %+v)", err, r.Status(ctx))
		}
		if st := r.Status(ctx); st.Error != "" || st.Events != 3 {
			t.Errorf("status: %+v; want 3 events applied, once each", st)
		}
	})
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// appendOtherEvents appends n events to a stream that is not an order's.
func appendOtherEvents(tb testing.TB, es *eventstore.Store, n int) {
	tb.Helper()
	for range n {
		if _, err := es.Append(context.Background(), "sku-checkpoint-test", eventstore.Any(),
			eventstore.EventData{ID: uuid.New(), Type: "InventoryAdded", Data: []byte(`{"sku":"checkpoint-test","quantity":1}`)}); err != nil {
			tb.Fatal(err)
		}
	}
}
