package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

func openStore(t testing.TB) *eventstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func request(tb testing.TB, id string, cmd domain.Command) commands.Request {
	tb.Helper()
	body, err := jsonOf(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	return commands.Request{CommandID: id, CommandType: cmd.CommandType(), OrderID: cmd.OrderID(), Body: body}
}

// TestTwoServicesRaceOnOneOrder runs two command services (two processes'
// worth of caches) against one store: conflicts are retried on fresh state,
// every command ID takes effect once, and the stream stays a legal history.
func TestTwoServicesRaceOnOneOrder(t *testing.T) {
	store := serve.CommandStore{Store: openStore(t)}
	a := commands.New(store, commands.Options{})
	b := commands.New(store, commands.Options{})
	ctx := context.Background()
	order := uuid.NewString()
	place := domain.PlaceOrder{Order: order, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}}
	for _, r := range []commands.Request{
		request(t, "place", place),
		request(t, "reserve", domain.MarkStockReserved{Order: order}),
		request(t, "pay", domain.ConfirmPayment{Order: order, PaymentID: "p", Amount: 1000}),
	} {
		if res := a.Execute(ctx, r); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	// b's cache is empty and a's is warm. As in production, each service
	// handles one order's commands in sequence (one lane per order per
	// process), and the two processes race each other; every refund is also
	// delivered to both (a redelivery to another process).
	var wg sync.WaitGroup
	results := make(chan commands.Result, 40)
	for _, svc := range []*commands.Service{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				r := request(t, fmt.Sprintf("refund-%d", i), domain.RequestRefund{Order: order, RefundID: fmt.Sprint("r", i), Amount: 10, Reason: "x"})
				results <- svc.Execute(ctx, r)
			}
		}()
	}
	wg.Wait()
	close(results)
	firsts := map[string]commands.Result{}
	for res := range results {
		if res.Err != nil {
			t.Fatalf("%s: %v", res.CommandID, res.Err)
		}
		if prev, ok := firsts[res.CommandID]; ok && prev.Revision != res.Revision {
			t.Fatalf("%s answered with revisions %d and %d: applied twice", res.CommandID, prev.Revision, res.Revision)
		}
		firsts[res.CommandID] = res
	}
	view, err := b.GetOrder(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Refunds) != 20 || view.Revision != 2+20 {
		t.Fatalf("order has %d refunds at revision %d, want 20 at revision 22", len(view.Refunds), view.Revision)
	}
}

func TestRejectionsAndDuplicates(t *testing.T) {
	svc := commands.New(serve.CommandStore{Store: openStore(t)}, commands.Options{})
	ctx := context.Background()
	order := uuid.NewString()
	res := svc.Execute(ctx, request(t, "ship-first", domain.ShipOrder{Order: order, Carrier: "c", TrackingNumber: "t"}))
	if !errors.Is(res.Err, domain.ErrNotFound) || res.Transient() {
		t.Fatalf("shipping a missing order: %v (transient %t), want not_found", res.Err, res.Transient())
	}
	res = svc.Execute(ctx, commands.Request{CommandID: "x", CommandType: "PlaceOrder", OrderID: order, Body: []byte(`{`)})
	if !errors.Is(res.Err, domain.ErrInvalidCommand) {
		t.Fatalf("malformed body: %v", res.Err)
	}
	place := request(t, "place-1", domain.PlaceOrder{Order: order, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 5}}})
	first := svc.Execute(ctx, place)
	again := svc.Execute(ctx, place)
	if first.Err != nil || again.Err != nil || !again.Duplicate || again.Revision != first.Revision || again.Position != first.Position {
		t.Fatalf("repeat of place-1: first %+v, again %+v", first, again)
	}
}

// countingStore counts the reads that reach the event store.
type countingStore struct {
	commands.EventStore
	mu    sync.Mutex
	reads int
}

func (c *countingStore) ReadStream(ctx context.Context, stream string, from int64, fn func(commands.StoredEvent) error) error {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.EventStore.ReadStream(ctx, stream, from, fn)
}

// TestConcurrentCommandsOnOneOrderWaitForEachOther: commands for one order
// that reach one service at once (the workers' lane and the saga) take
// turns on the cached order instead of each reading the stream and racing
// to append; each takes effect once and none reads the stream.
func TestConcurrentCommandsOnOneOrderWaitForEachOther(t *testing.T) {
	store := &countingStore{EventStore: serve.CommandStore{Store: openStore(t)}}
	svc := commands.New(store, commands.Options{})
	ctx := context.Background()
	order := uuid.NewString()
	for _, r := range []commands.Request{
		request(t, "place", domain.PlaceOrder{Order: order, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}}),
		request(t, "reserve", domain.MarkStockReserved{Order: order}),
		request(t, "pay", domain.ConfirmPayment{Order: order, PaymentID: "p", Amount: 1000}),
	} {
		if res := svc.Execute(ctx, r); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	const n = 20
	var wg sync.WaitGroup
	revisions := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := svc.Execute(ctx, request(t, fmt.Sprintf("refund-%d", i), domain.RequestRefund{Order: order, RefundID: fmt.Sprint("r", i), Amount: 10, Reason: "x"}))
			if res.Err != nil || res.Duplicate {
				t.Errorf("refund-%d: %+v", i, res)
			}
			revisions <- res.Revision
		}()
	}
	wg.Wait()
	close(revisions)
	seen := map[int64]bool{}
	for r := range revisions {
		if seen[r] {
			t.Fatalf("two refunds answered with revision %d", r)
		}
		seen[r] = true
	}
	if store.reads != 0 {
		t.Fatalf("the store was read %d times, want 0: the order was cached and its commands took turns", store.reads)
	}
	view, err := svc.GetOrder(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Refunds) != n || view.Revision != 2+n {
		t.Fatalf("order has %d refunds at revision %d, want %d at revision %d", len(view.Refunds), view.Revision, n, 2+n)
	}
}

// TestRefusalReportsCurrentState: a refused command tells the state it was
// refused in (the saga decides on it without reading the order again), and
// the refusal was checked on state read from the stream.
func TestRefusalReportsCurrentState(t *testing.T) {
	store := &countingStore{EventStore: serve.CommandStore{Store: openStore(t)}}
	svc := commands.New(store, commands.Options{})
	ctx := context.Background()
	order := uuid.NewString()
	for _, r := range []commands.Request{
		request(t, "place", domain.PlaceOrder{Order: order, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}}),
		request(t, "cancel", domain.CancelOrder{Order: order, Reason: "changed my mind"}),
	} {
		if res := svc.Execute(ctx, r); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	res := svc.Execute(ctx, request(t, "reserve", domain.MarkStockReserved{Order: order}))
	if !errors.Is(res.Err, domain.ErrIllegalTransition) || res.Current != domain.StateCancelled {
		t.Fatalf("reserving a cancelled order: err %v, current %q; want illegal_transition in %q", res.Err, res.Current, domain.StateCancelled)
	}
	if store.reads != 1 {
		t.Fatalf("the store was read %d times, want 1: a refusal is confirmed on fresh state", store.reads)
	}
	ok := svc.Execute(ctx, request(t, "cancel", domain.CancelOrder{Order: order, Reason: "changed my mind"}))
	if ok.Err != nil || ok.Current != "" {
		t.Fatalf("repeated cancel: err %v, current %q; want the first outcome and no current state", ok.Err, ok.Current)
	}
}
