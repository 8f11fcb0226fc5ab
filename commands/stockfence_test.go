package commands_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// conflictWatch is the real store, counting the appends it refused for a
// stale expected revision and calling onConflict after each.
type conflictWatch struct {
	commands.EventStore
	mu         sync.Mutex
	conflicts  int
	onConflict func()
}

func (w *conflictWatch) AppendToStream(ctx context.Context, stream string, expected int64, events []commands.NewEvent) (commands.Appended, error) {
	app, err := w.EventStore.AppendToStream(ctx, stream, expected, events)
	if errors.Is(err, commands.ErrConflict) {
		w.mu.Lock()
		w.conflicts++
		f := w.onConflict
		w.mu.Unlock()
		if f != nil {
			f()
		}
	}
	return app, err
}

func (w *conflictWatch) seen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conflicts
}

// stockEvents lists the types of a SKU stream's events.
func stockEvents(tb testing.TB, ctx context.Context, store commands.EventStore, sku string) []string {
	tb.Helper()
	var types []string
	if err := store.ReadStream(ctx, domain.StockStream(sku), 0, func(e commands.StoredEvent) error {
		types = append(types, e.Type)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return types
}

// TestStockFenceStopsAStaleWriter: the writer of a SKU loses its lease
// while its lane retries a reservation on conflicts, since the new writer
// appends to the same SKU. Without the fence the lane reloads and appends
// the reservation after the new writer may have settled the order (its
// release found nothing), so units stay held for an order that is over.
// With it, the lane stops at the first conflict after the revocation,
// appends nothing more, and answers ErrNotStockWriter to that caller and to
// every later one until a new term begins.
func TestStockFenceStopsAStaleWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(cancel context.CancelFunc, validUntil *atomic.Pointer[time.Time])
	}{
		{"the lease is lost", func(cancel context.CancelFunc, _ *atomic.Pointer[time.Time]) { cancel() }},
		{"the lease's validity passed unnoticed", func(_ context.CancelFunc, validUntil *atomic.Pointer[time.Time]) {
			past := time.Now().Add(-time.Millisecond)
			validUntil.Store(&past)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			store := serve.CommandStore{Store: openStore(t)}
			watch := &conflictWatch{EventStore: store}
			old := commands.NewStockService(watch, commands.StockOptions{Fenced: true})
			defer old.Close()
			leaseCtx, lose := context.WithCancel(ctx)
			defer lose()
			var validUntil atomic.Pointer[time.Time]
			later := time.Now().Add(time.Hour)
			validUntil.Store(&later)
			end := old.WriteWhile(leaseCtx, func() time.Time { return *validUntil.Load() })
			defer end()
			const sku = "fenced"
			if r := old.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 5}}); r.Err != nil {
				t.Fatal(r.Err)
			}
			// The new holder appends to the SKU: the old lane's stock is
			// stale, so its next append conflicts, and the lease is gone
			// by the time it could try again.
			taker := commands.NewStockService(store, commands.StockOptions{})
			defer taker.Close()
			if r := taker.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 1}}); r.Err != nil {
				t.Fatal(r.Err)
			}
			watch.mu.Lock()
			watch.onConflict = func() { tc.revoke(lose, &validUntil) }
			watch.mu.Unlock()
			before := stockEvents(t, ctx, store, sku)

			r := old.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: sku, OrderID: uuid.NewString(), Quantity: 2}})
			if !errors.Is(r.Err, commands.ErrNotStockWriter) {
				t.Fatalf("the stale writer's reservation: err %v; want ErrNotStockWriter", r.Err)
			}
			if got := watch.seen(); got != 1 {
				t.Fatalf("conflicts seen: got %d, want 1 (the lane must not try again once fenced)", got)
			}
			r = old.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReleaseStock{SKU: sku, OrderID: uuid.NewString()}})
			if !errors.Is(r.Err, commands.ErrNotStockWriter) {
				t.Fatalf("a command after the revocation: err %v; want ErrNotStockWriter", r.Err)
			}
			if _, err := old.Get(ctx, sku); !errors.Is(err, commands.ErrNotStockWriter) {
				t.Fatalf("a read after the revocation: err %v; want ErrNotStockWriter (its stock may be stale)", err)
			}
			if after := stockEvents(t, ctx, store, sku); len(after) != len(before) {
				t.Fatalf("the SKU's stream after the revocation: got %v, want %v (nothing appended)", after, before)
			}
		})
	}
}

// TestStockFenceNewTermReloads: a writer that regains the lease decides on
// the stock as the store has it, not as its lanes remembered it from its
// previous term (the other writer appended meanwhile): its first append
// meets no conflict, and the reservation sees the other writer's units.
func TestStockFenceNewTermReloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := serve.CommandStore{Store: openStore(t)}
	watch := &conflictWatch{EventStore: store}
	w := commands.NewStockService(watch, commands.StockOptions{Fenced: true})
	defer w.Close()
	const sku = "regained"
	if _, err := w.Get(ctx, sku); !errors.Is(err, commands.ErrNotStockWriter) {
		t.Fatalf("a read before any term: err %v; want ErrNotStockWriter", err)
	}
	end := w.WriteWhile(ctx, nil)
	if r := w.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 1}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	end()
	other := commands.NewStockService(store, commands.StockOptions{})
	defer other.Close()
	if r := other.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 2}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	defer w.WriteWhile(ctx, nil)()
	r := w.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: sku, OrderID: uuid.NewString(), Quantity: 3}})
	if r.Err != nil {
		t.Fatalf("the reservation in the new term: %v", r.Err)
	}
	if r.Stock.Reserved != 3 || r.Stock.Available != 0 {
		t.Fatalf("stock after the reservation: %+v; want 3 reserved, none available", r.Stock)
	}
	if got := watch.seen(); got != 0 {
		t.Fatalf("conflicts seen: got %d, want 0 (a new term must reload, not decide on the old term's stock)", got)
	}
}
