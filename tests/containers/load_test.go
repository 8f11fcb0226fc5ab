//go:build containers

package containers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// The kinds of order the load drives, each to its own end.
const (
	kindCompleted = iota // paid, shipped, delivered, completed: its stock leaves the warehouse
	kindRefunded         // paid, then fully refunded before shipping: its stock is released
	kindCancelled        // cancelled while awaiting payment: its stock is released
	kindPaid             // paid and left there: its stock stays reserved
	kinds
)

var wantState = [kinds]domain.State{domain.StateCompleted, domain.StateRefunded, domain.StateCancelled, domain.StatePaid}

const (
	unitPrice = 1000
	quantity  = 2
	total     = unitPrice * quantity
	// commandPatience bounds the retries of one command (same command ID)
	// and the wait for the saga's decision on one order.
	commandPatience = 90 * time.Second
)

// order is one order the load started.
type order struct {
	id, sku string
	kind    int // -1: a flash-sale order, left as the saga decided
	acked   []string
}

// load is a bounded number of clients, each driving at most maxOrders
// orders through their lifecycle; a command answered with an error or not
// in time is sent again with the same command ID until it succeeds.
type load struct {
	c         *cluster
	sku       string
	clients   int
	maxOrders int
	stopNew   atomic.Bool
	wg        sync.WaitGroup

	mu       sync.Mutex
	acks     []time.Time       // when each acknowledged command was answered, in order
	orders   map[string]*order // every order a client started
	inFlight map[int]time.Time // client -> when its current command was first sent
	errs     []error
}

func newLoad(c *cluster, sku string, clients, maxOrders int) *load {
	return &load{c: c, sku: sku, clients: clients, maxOrders: maxOrders,
		orders: map[string]*order{}, inFlight: map[int]time.Time{}}
}

func (l *load) run() {
	for cl := range l.clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < l.maxOrders && !l.stopNew.Load(); i++ {
				if err := l.drive(cl, &order{id: uuid.NewString(), sku: l.sku, kind: (cl + i) % kinds}); err != nil {
					l.fail(err)
					return
				}
			}
		}()
	}
}

func (l *load) fail(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// drive takes one order to its kind's end.
func (l *load) drive(cl int, o *order) error {
	l.mu.Lock()
	l.orders[o.id] = o
	l.mu.Unlock()
	if err := l.send(cl, o, 0, place(o.id, o.sku)); err != nil {
		return err
	}
	state, err := l.c.settle(o.id)
	if err != nil {
		return err
	}
	if state != domain.StateAwaitingPayment {
		return fmt.Errorf("order %s: the saga left it %s, want awaiting_payment (the SKU has plenty)", o.id, state)
	}
	pay := domain.ConfirmPayment{Order: o.id, PaymentID: "p-" + o.id[:8], Amount: total}
	var steps []domain.Command
	switch o.kind {
	case kindCompleted:
		steps = []domain.Command{pay, domain.ShipOrder{Order: o.id, Carrier: "dhl", TrackingNumber: "t-" + o.id[:8]},
			domain.ConfirmDelivery{Order: o.id}, domain.CompleteOrder{Order: o.id}}
	case kindRefunded:
		steps = []domain.Command{pay, domain.RequestRefund{Order: o.id, RefundID: "r-" + o.id[:8], Amount: total, Reason: "changed mind"},
			domain.CompleteRefund{Order: o.id, RefundID: "r-" + o.id[:8]}}
	case kindCancelled:
		steps = []domain.Command{domain.CancelOrder{Order: o.id, Reason: "customer"}}
	case kindPaid:
		steps = []domain.Command{pay}
	}
	for i, cmd := range steps {
		if err := l.send(cl, o, i+1, cmd); err != nil {
			return err
		}
	}
	return nil
}

func place(id, sku string) domain.PlaceOrder {
	return domain.PlaceOrder{Order: id, CustomerID: "c-" + id[:4], Currency: "EUR",
		Lines: []domain.Line{{SKU: sku, Quantity: quantity, UnitPrice: unitPrice}}}
}

// send sends one command under the order's i-th command ID until it is
// acknowledged.
func (l *load) send(cl int, o *order, i int, cmd domain.Command) error {
	commandID := fmt.Sprintf("%s-%d", o.id, i)
	first := time.Now()
	l.mu.Lock()
	l.inFlight[cl] = first
	l.mu.Unlock()
	for time.Since(first) < commandPatience {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := l.c.client.SendCommand(ctx, cmd, ordonats.WithCommandID(commandID))
		cancel()
		var ce *ordonats.CommandError
		switch {
		case err == nil:
			l.mu.Lock()
			l.acks = append(l.acks, time.Now())
			o.acked = append(o.acked, commandID)
			delete(l.inFlight, cl)
			l.mu.Unlock()
			return nil
		case errors.As(err, &ce) && ce.Code != string(domain.CodeUnavailable):
			return fmt.Errorf("command %s (%s): refused: %w", commandID, cmd.CommandType(), err)
		}
		time.Sleep(100 * time.Millisecond) // unavailable or no answer in time: the same command again
	}
	return fmt.Errorf("command %s (%s) not acknowledged within %s", commandID, cmd.CommandType(), commandPatience)
}

// acked is how many commands have been acknowledged so far.
func (l *load) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// awaitProgress waits for n more acknowledged commands.
func (l *load) awaitProgress(t *testing.T, n int, what string) {
	t.Helper()
	want := l.acked() + n
	waitFor(t, 2*time.Minute, fmt.Sprintf("%d more commands acknowledged %s", n, what), func() bool { return l.acked() >= want })
}

// recovery measures a fault at `at`: how long until every command that was
// in flight then was acknowledged, and the longest pause between two
// acknowledgements from the fault until the load moved on (all in-flight
// commands answered and n more acknowledged).
func (l *load) recovery(t *testing.T, at time.Time, n int) (inFlight, pause time.Duration) {
	t.Helper()
	l.mu.Lock()
	var waiting []int
	for cl, since := range l.inFlight {
		if since.Before(at) {
			waiting = append(waiting, cl)
		}
	}
	l.mu.Unlock()
	waitFor(t, 2*time.Minute, "every command in flight at the fault acknowledged", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, cl := range waiting {
			if since, ok := l.inFlight[cl]; ok && since.Before(at) {
				return false
			}
		}
		return true
	})
	inFlight = time.Since(at)
	l.awaitProgress(t, n, "after the fault")
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := slices.BinarySearchFunc(l.acks, at, func(a, b time.Time) int { return a.Compare(b) })
	prev := at
	for _, a := range l.acks[i:] {
		pause = max(pause, a.Sub(prev))
		prev = a
	}
	return inFlight, pause
}

// finish lets every client complete the order it is on, then stops.
func (l *load) finish(t *testing.T) {
	t.Helper()
	l.stopNew.Store(true)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("the clients did not finish their orders within 5 minutes")
	}
	for _, err := range l.errs {
		t.Errorf("load: %v", err)
	}
	t.Logf("load: %d orders, %d commands acknowledged", len(l.orders), len(l.acks))
}

// flashSale places `orders` orders of 1 unit each at once for a SKU that
// has `stock` units, and returns them once the saga decided every one.
func flashSale(t *testing.T, c *cluster, sku string, stock, orders int) []*order {
	t.Helper()
	ctx := ctxT(t, 3*time.Minute)
	if _, err := c.client.AddStock(ctx, sku, int64(stock), "add-"+sku); err != nil {
		t.Fatalf("add stock to %s: %v", sku, err)
	}
	out := make([]*order, orders)
	var wg sync.WaitGroup
	errs := make(chan error, orders)
	for i := range out {
		o := &order{id: uuid.NewString(), sku: sku, kind: -1}
		out[i] = o
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &load{c: c, orders: map[string]*order{}, inFlight: map[int]time.Time{}}
			cmd := domain.PlaceOrder{Order: o.id, CustomerID: "flash", Currency: "EUR",
				Lines: []domain.Line{{SKU: sku, Quantity: 1, UnitPrice: unitPrice}}}
			if err := l.send(i, o, 0, cmd); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("flash sale: %v", err)
	}
	reserved := 0
	for _, o := range out {
		state, err := c.settle(o.id)
		if err != nil {
			t.Fatal(err)
		}
		if state == domain.StateAwaitingPayment {
			reserved++
		}
	}
	if reserved != min(stock, orders) {
		t.Errorf("flash sale of %d units to %d orders: %d orders got their unit, want %d", stock, orders, reserved, min(stock, orders))
	}
	return out
}

// settle waits for the saga's decision on an order and returns its state.
func (c *cluster) settle(id string) (domain.State, error) {
	deadline := time.Now().Add(commandPatience)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := c.client.GetOrder(ctx, id)
		cancel()
		if err == nil && v.State != domain.StatePlaced {
			return v.State, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("order %s: the saga decided nothing within %s", id, commandPatience)
}
