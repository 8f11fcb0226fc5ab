package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

// stockAPIFixture is a stock API over a real embedded store, with an order
// service to place the orders it checks against.
type stockAPIFixture struct {
	store  *eventstore.Store
	orders *commands.Service
	stock  *commands.StockService
	api    *commands.StockAPI
}

func newStockAPIFixture(tb testing.TB, manual bool) stockAPIFixture {
	tb.Helper()
	es := openStore(tb)
	store := serve.CommandStore{Store: es}
	f := stockAPIFixture{store: es, orders: commands.New(store, commands.Options{}), stock: commands.NewStockService(store, commands.StockOptions{})}
	tb.Cleanup(f.stock.Close)
	f.api = commands.NewStockAPI(f.stock, f.orders, commands.StockAPIOptions{ManualStock: manual})
	if r := f.stock.Execute(context.Background(), commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: "a", Quantity: 10}}); r.Err != nil {
		tb.Fatal(r.Err)
	}
	return f
}

// submit runs one command through the API and waits for its result.
func (f stockAPIFixture) submit(cmd domain.StockCommand) commands.StockResult {
	done := make(chan commands.StockResult, 1)
	f.api.Submit(commands.StockRequest{CommandID: uuid.NewString(), Command: cmd}, func(r commands.StockResult) { done <- r })
	return <-done
}

// place places an order of 3 a and 2 b.
func (f stockAPIFixture) place(t *testing.T) string {
	t.Helper()
	id := uuid.NewString()
	res := f.orders.Execute(context.Background(), request(t, uuid.NewString(), domain.PlaceOrder{Order: id, CustomerID: "c", Currency: "EUR",
		Lines: []domain.Line{{SKU: "a", Quantity: 2, UnitPrice: 1}, {SKU: "b", Quantity: 2, UnitPrice: 1}, {SKU: "a", Quantity: 1, UnitPrice: 1}}}))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return id
}

func (f stockAPIFixture) run(t *testing.T, cmd domain.Command) {
	t.Helper()
	if res := f.orders.Execute(context.Background(), request(t, uuid.NewString(), cmd)); res.Err != nil {
		t.Fatal(res.Err)
	}
}

// TestStockAPIReservationsBackRealOrders: through the stock API a
// reservation needs an order that exists, a line of the SKU and exactly the
// order's quantity of it, and an order whose stock will still be settled;
// a second reservation with another quantity is a conflict, the same one
// again changes nothing; a release is refused while the order counts on its
// stock.
func TestStockAPIReservationsBackRealOrders(t *testing.T) {
	f := newStockAPIFixture(t, true)
	ctx := context.Background()
	id := f.place(t)
	for _, tc := range []struct {
		name string
		cmd  domain.StockCommand
		want *domain.Error
	}{
		{"unknown order", domain.ReserveStock{SKU: "a", OrderID: uuid.NewString(), Quantity: 3}, domain.ErrNotFound},
		{"SKU not in the order", domain.ReserveStock{SKU: "c", OrderID: id, Quantity: 3}, domain.ErrReservationConflict},
		{"less than the order's lines", domain.ReserveStock{SKU: "a", OrderID: id, Quantity: 2}, domain.ErrReservationConflict},
		{"more than the order's lines", domain.ReserveStock{SKU: "a", OrderID: id, Quantity: 4}, domain.ErrReservationConflict},
		{"commit", domain.CommitStock{SKU: "a", OrderID: id}, domain.ErrSagaOnly},
	} {
		if r := f.submit(tc.cmd); !errors.Is(r.Err, tc.want) || len(r.Events) != 0 {
			t.Errorf("%s: got %+v, want %s", tc.name, r, tc.want.Code)
		}
	}
	if r := f.submit(domain.ReserveStock{SKU: "a", OrderID: id, Quantity: 3}); r.Err != nil || len(r.Events) != 1 || r.Stock.Reserved != 3 {
		t.Fatalf("reservation of the order's 3 a: %+v", r)
	}
	if r := f.submit(domain.ReserveStock{SKU: "a", OrderID: id, Quantity: 3}); r.Err != nil || len(r.Events) != 0 {
		t.Fatalf("the same reservation again: %+v, want success with no events", r)
	}
	// The order's lines allow only 3; a reservation held from before with
	// another quantity is refused by the stock itself.
	other := uuid.NewString()
	if r := f.stock.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "a", OrderID: other, Quantity: 1}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := f.stock.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "a", OrderID: other, Quantity: 2}}); !errors.Is(r.Err, domain.ErrReservationConflict) {
		t.Fatalf("a second reservation with another quantity: %+v, want reservation_conflict", r)
	}
	// Awaiting payment, the order counts on its stock.
	f.run(t, domain.MarkStockReserved{Order: id})
	if r := f.submit(domain.ReleaseStock{SKU: "a", OrderID: id}); !errors.Is(r.Err, domain.ErrIllegalTransition) {
		t.Fatalf("release while awaiting payment: %+v, want illegal_transition", r)
	}
	// Cancelled, it takes no new reservation (the saga has settled it).
	f.run(t, domain.CancelOrder{Order: id, Reason: "test"})
	if r := f.submit(domain.ReserveStock{SKU: "b", OrderID: id, Quantity: 2}); !errors.Is(r.Err, domain.ErrIllegalTransition) {
		t.Fatalf("reservation for a cancelled order: %+v, want illegal_transition", r)
	}
	if r := f.submit(domain.ReleaseStock{SKU: "a", OrderID: id}); r.Err != nil || len(r.Events) != 1 {
		t.Fatalf("release after the cancellation: %+v", r)
	}
	// A release for an order that does not exist only gives stock back.
	if r := f.submit(domain.ReleaseStock{SKU: "a", OrderID: other}); r.Err != nil || len(r.Events) != 1 || r.Stock.Reserved != 0 {
		t.Fatalf("release of an orphan reservation: %+v", r)
	}
}

// TestStockAPISagaOnly: while the saga manages stock, clients add and read
// stock but neither reserve nor release; a SKU that never had stock is not
// found.
func TestStockAPISagaOnly(t *testing.T) {
	f := newStockAPIFixture(t, false)
	id := f.place(t)
	for _, cmd := range []domain.StockCommand{domain.ReserveStock{SKU: "a", OrderID: id, Quantity: 3}, domain.ReleaseStock{SKU: "a", OrderID: id}} {
		if r := f.submit(cmd); !errors.Is(r.Err, domain.ErrSagaOnly) {
			t.Fatalf("%T with the saga on: %+v, want saga_only", cmd, r)
		}
	}
	if r := f.submit(domain.AddStock{SKU: "a", Quantity: 1}); r.Err != nil || r.Stock.OnHand != 11 {
		t.Fatalf("add: %+v", r)
	}
	if _, err := f.api.Get(context.Background(), "never"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("get of a SKU that never had stock: %v, want not_found", err)
	}
	if v, err := f.api.Get(context.Background(), "a"); err != nil || v.OnHand != 11 {
		t.Fatalf("get: %+v, %v", v, err)
	}
}

// TestStockAPIReservationRacingACancellation: the order is cancelled by
// another process after the API read it (here: its cached copy still says
// placed) and before the reservation is durable, so the saga may already
// have released nothing. The API reads the order again after reserving,
// gives the stock back and refuses: the reservation does not outlive the
// order.
func TestStockAPIReservationRacingACancellation(t *testing.T) {
	f := newStockAPIFixture(t, true)
	id := f.place(t)
	if _, err := f.orders.GetOrder(context.Background(), id); err != nil { // cached as placed
		t.Fatal(err)
	}
	elsewhere := commands.New(serve.CommandStore{Store: f.store}, commands.Options{})
	if res := elsewhere.Execute(context.Background(), request(t, uuid.NewString(), domain.CancelOrder{Order: id, Reason: "changed my mind"})); res.Err != nil {
		t.Fatal(res.Err)
	}
	r := f.submit(domain.ReserveStock{SKU: "a", OrderID: id, Quantity: 3})
	if !errors.Is(r.Err, domain.ErrIllegalTransition) {
		t.Fatalf("reservation for an order cancelled meanwhile: %+v, want illegal_transition", r)
	}
	if v, err := f.stock.Get(context.Background(), "a"); err != nil || v.Reserved != 0 || v.Available != 10 {
		t.Fatalf("stock after the refused reservation: %+v, %v; want nothing reserved", v, err)
	}
}
