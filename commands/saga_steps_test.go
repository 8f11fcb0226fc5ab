package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// sagaRig is the saga over the real embedded store, driven step by step.
type sagaRig struct {
	t      *testing.T
	store  serve.CommandStore
	orders *commands.Service
	stock  *commands.StockService
	saga   *commands.Saga
}

func newSagaRig(t *testing.T) *sagaRig {
	store := serve.CommandStore{Store: openStore(t)}
	orders := commands.New(store, commands.Options{})
	stock := commands.NewStockService(store, commands.StockOptions{})
	t.Cleanup(stock.Close)
	// No timers, source or checkpoints: the steps driven here (placed,
	// rejected, shipped, refunded) touch none of them.
	saga := commands.NewSaga(orders, stock, nil, nil, nil, commands.SagaOptions{})
	return &sagaRig{t: t, store: store, orders: orders, stock: stock, saga: saga}
}

func (r *sagaRig) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	r.t.Cleanup(cancel)
	return ctx
}

func (r *sagaRig) add(sku string, n int64) {
	r.t.Helper()
	if res := r.stock.Execute(r.ctx(), commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: n}}); res.Err != nil {
		r.t.Fatal(res.Err)
	}
}

func (r *sagaRig) do(cmd domain.Command) {
	r.t.Helper()
	if res := r.orders.Execute(r.ctx(), request(r.t, uuid.NewString(), cmd)); res.Err != nil {
		r.t.Fatalf("%T: %v", cmd, res.Err)
	}
}

// place places an order for lines and returns its ID.
func (r *sagaRig) place(lines ...domain.Line) string {
	r.t.Helper()
	id := uuid.NewString()
	r.do(domain.PlaceOrder{Order: id, CustomerID: "c", Lines: lines, Currency: "EUR"})
	return id
}

// replay runs the saga's step for every event of the order's stream of
// type typ, as the saga does on first sight and again after a restart.
func (r *sagaRig) replay(orderID, typ string) {
	r.t.Helper()
	n := 0
	err := r.store.ReadStream(r.ctx(), commands.StreamName(orderID), 0, func(e commands.StoredEvent) error {
		if e.Type != typ {
			return nil
		}
		n++
		return r.saga.Step(r.ctx(), orderID, e)
	})
	if err != nil || n == 0 {
		r.t.Fatalf("step %s of order %s: %v (%d events)", typ, orderID, err, n)
	}
}

func (r *sagaRig) state(orderID string) domain.State {
	r.t.Helper()
	v, err := r.orders.GetOrder(r.ctx(), orderID)
	if err != nil {
		r.t.Fatal(err)
	}
	return v.State
}

func (r *sagaRig) stockOf(sku string) domain.StockView {
	r.t.Helper()
	v, err := r.stock.Get(r.ctx(), sku)
	if err != nil {
		r.t.Fatal(err)
	}
	return v
}

func line(sku string, q int64) domain.Line { return domain.Line{SKU: sku, Quantity: q, UnitPrice: 100} }

// TestSagaStepReserve: OrderPlaced reserves every line or none.
func TestSagaStepReserve(t *testing.T) {
	r := newSagaRig(t)
	r.add("a", 3)
	r.add("b", 1)
	ok := r.place(line("a", 2), line("b", 1), line("a", 1)) // one SKU on two lines: reserved as one
	r.replay(ok, domain.EvtOrderPlaced)
	if s := r.state(ok); s != domain.StateAwaitingPayment {
		t.Fatalf("order with stock: %s, want %s", s, domain.StateAwaitingPayment)
	}
	if a, b := r.stockOf("a"), r.stockOf("b"); a.Reserved != 3 || b.Reserved != 1 {
		t.Fatalf("reserved a %d, b %d; want 3 and 1", a.Reserved, b.Reserved)
	}
	r.add("a", 1)
	short := r.place(line("a", 1), line("b", 1)) // a has 1, b has none
	r.replay(short, domain.EvtOrderPlaced)
	if s := r.state(short); s != domain.StateCancelled {
		t.Fatalf("order short of b: %s, want %s", s, domain.StateCancelled)
	}
	if a := r.stockOf("a"); a.Reserved != 3 || a.Available != 1 {
		t.Fatalf("a after the rejected order: %+v; its line must be given back", a)
	}
	// Replayed, both steps change nothing.
	r.replay(ok, domain.EvtOrderPlaced)
	r.replay(short, domain.EvtOrderPlaced)
	if a, b := r.stockOf("a"), r.stockOf("b"); a.Reserved != 3 || b.Reserved != 1 {
		t.Fatalf("after the replay: reserved a %d, b %d; want 3 and 1", a.Reserved, b.Reserved)
	}
}

// TestSagaStepSettle: shipping commits the order's stock, a full refund
// before shipping and a rejection release it; repeated, nothing changes.
func TestSagaStepSettle(t *testing.T) {
	r := newSagaRig(t)
	r.add("a", 2)
	shipped, refunded := r.place(line("a", 1)), r.place(line("a", 1))
	for _, id := range []string{shipped, refunded} {
		r.replay(id, domain.EvtOrderPlaced)
		r.do(domain.ConfirmPayment{Order: id, PaymentID: "p-" + id, Amount: 100, Currency: "EUR"})
	}
	r.do(domain.ShipOrder{Order: shipped, Carrier: "c", TrackingNumber: "t"})
	r.do(domain.RequestRefund{Order: refunded, RefundID: "r1", Amount: 100, Currency: "EUR", Reason: "changed mind"})
	r.do(domain.CompleteRefund{Order: refunded, RefundID: "r1"})
	for range 2 {
		r.replay(shipped, domain.EvtOrderShipped)
		r.replay(refunded, domain.EvtOrderRefunded)
		if a := r.stockOf("a"); a.OnHand != 1 || a.Reserved != 0 || a.Available != 1 {
			t.Fatalf("a after one shipped and one refunded order: %+v; want 1 on hand, none reserved", a)
		}
	}
}

// TestSagaReplayedReservationKeepsSettledOrders reproduces an oversell
// after a restart, with one instance: the saga committed one line of a
// shipped order and stopped before the other (its checkpoint was before
// the order was placed). Replaying OrderPlaced found the committed line
// "short" and released the order's other line, which had shipped too,
// so its unit was sold twice.
func TestSagaReplayedReservationKeepsSettledOrders(t *testing.T) {
	r := newSagaRig(t)
	r.add("a", 1)
	r.add("b", 1)
	first := r.place(line("a", 1), line("b", 1))
	r.replay(first, domain.EvtOrderPlaced)
	r.do(domain.ConfirmPayment{Order: first, PaymentID: "p1", Amount: 200, Currency: "EUR"})
	r.do(domain.ShipOrder{Order: first, Carrier: "c", TrackingNumber: "t"})
	// The saga's OrderShipped step commits a, then the process dies.
	if res := r.stock.Execute(r.ctx(), commands.StockRequest{CommandID: uuid.NewString(), Command: domain.CommitStock{SKU: "a", OrderID: first}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	// The restarted saga goes over the order's history again.
	r.replay(first, domain.EvtOrderPlaced)
	if b := r.stockOf("b"); b.Reserved != 1 || b.Available != 0 {
		t.Fatalf("b after the replay: %+v; the shipped order's reservation must stay", b)
	}
	second := r.place(line("b", 1))
	r.replay(second, domain.EvtOrderPlaced)
	r.replay(first, domain.EvtOrderShipped)
	if s := r.state(second); s != domain.StateCancelled {
		t.Fatalf("a second order for b's only unit, already shipped: %s, want %s (oversold)", s, domain.StateCancelled)
	}
	if b := r.stockOf("b"); b.OnHand != 0 || b.Reserved != 0 {
		t.Fatalf("b after shipping: %+v; want nothing on hand or reserved", b)
	}
}
