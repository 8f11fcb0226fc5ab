package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// sagaConfig is the service as `ordo serve` runs it: the saga reserves
// stock for every order.
func sagaConfig(tb testing.TB, dir string, paymentTimeout time.Duration) serve.Config {
	cfg := config(tb, dir)
	cfg.ManualStock, cfg.PaymentTimeout = false, paymentTimeout
	return cfg
}

func oneLine(id, sku string, qty int64) domain.PlaceOrder {
	return domain.PlaceOrder{Order: id, CustomerID: "c-1", Currency: "EUR", Lines: []domain.Line{{SKU: sku, Quantity: qty, UnitPrice: 100}}}
}

// settle waits until every order has left the placed state (the saga has
// decided its stock) and returns the views.
func settle(tb testing.TB, ctx context.Context, c *ordonats.Client, ids []string) map[string]domain.OrderView {
	tb.Helper()
	out := make(map[string]domain.OrderView, len(ids))
	var mu sync.Mutex
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for {
				v, err := c.GetOrder(ctx, id)
				if err == nil && v.State != domain.StatePlaced {
					mu.Lock()
					out[id] = v
					mu.Unlock()
					return
				}
				if ctx.Err() != nil {
					tb.Errorf("order %s never left placed (last: %+v, %v)", id, v.State, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	return out
}

// TestFlashSale places 10,000 orders for one SKU holding 1,000 units, all
// at once: exactly 1,000 end awaiting payment, the rest are cancelled with
// out_of_stock, the stock ends at zero available, and no reading of the
// stock while the sale ran ever showed it negative.
func TestFlashSale(t *testing.T) {
	orders, units := 10_000, int64(1_000)
	if testing.Short() {
		orders, units = 2_000, 200
	}
	s := start(t, sagaConfig(t, t.TempDir(), time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := s.client.AddStock(ctx, "flash", units, ""); err != nil {
		t.Fatal(err)
	}
	// Watch the stock while the sale runs.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var negative atomic.Int64
	var reads atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			if v, err := s.client.GetStock(watchCtx, "flash"); err == nil {
				reads.Add(1)
				if v.Available < 0 || v.Reserved > v.OnHand {
					negative.Add(1)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	began := time.Now()
	ids := make([]string, orders)
	sem := make(chan struct{}, 512)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = uuid.NewString()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for attempt := 0; ; attempt++ {
				_, err := s.client.PlaceOrder(ctx, oneLine(ids[i], "flash", 1), ordonats.WithCommandID(ids[i]))
				if err == nil || attempt == 5 {
					if err != nil {
						t.Errorf("place %s: %v", ids[i], err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	placedIn := time.Since(began)
	views := settle(t, ctx, s.client, ids)
	t.Logf("placed %d orders in %v; all settled after %v", orders, placedIn.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	stopWatch()
	<-watched
	var awaiting, soldOut int
	for id, v := range views {
		switch {
		case v.State == domain.StateAwaitingPayment:
			awaiting++
		case v.State == domain.StateCancelled && strings.Contains(v.Cancelled, string(domain.CodeOutOfStock)):
			soldOut++
		default:
			t.Errorf("order %s ended %s (%q)", id, v.State, v.Cancelled)
		}
	}
	stock, err := s.client.GetStock(ctx, "flash")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders: %d awaiting payment, %d sold out; stock %+v; %d stock readings during the sale", orders, awaiting, soldOut, stock, reads.Load())
	if awaiting != int(units) || soldOut != orders-int(units) {
		t.Fatalf("%d awaiting payment and %d sold out, want %d and %d", awaiting, soldOut, units, orders-int(units))
	}
	if stock.Available != 0 || stock.Reserved != units || stock.OnHand != units {
		t.Fatalf("stock %+v, want %d on hand, all reserved, 0 available", stock, units)
	}
	if negative.Load() > 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d stock readings during the sale showed oversell", negative.Load(), reads.Load())
	}
	// The saga's status shows it has handled the whole sale (the releases
	// after each rejection may still be finishing: wait for them).
	type sagaStatus struct {
		Running  bool   `json:"running"`
		Position uint64 `json:"position"`
		Seen     uint64 `json:"last_event_position"`
		InFlight int    `json:"in_flight"`
		Handled  int64  `json:"events_handled"`
	}
	var saga sagaStatus
	eventually.True(t, 30*time.Second, "the saga to handle the whole sale", func() bool {
		resp, err := http.Get("http://" + s.svc.HTTPAddr() + "/v1/saga")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		saga = sagaStatus{}
		// Each order: OrderPlaced, then StockReserved or StockRejected.
		return json.NewDecoder(resp.Body).Decode(&saga) == nil && saga.Running && saga.InFlight == 0 &&
			saga.Handled >= int64(2*orders) && saga.Position >= saga.Seen
	})
}

// TestPaymentTimeout: an unpaid order is cancelled when its time is up and
// its stock released; a paid one is left alone.
func TestPaymentTimeout(t *testing.T) {
	s := start(t, sagaConfig(t, t.TempDir(), 2*time.Second))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "slow", 10, ""); err != nil {
		t.Fatal(err)
	}
	unpaid, paid := uuid.NewString(), uuid.NewString()
	for _, id := range []string{unpaid, paid} {
		must(t)(s.client.PlaceOrder(ctx, oneLine(id, "slow", 3)))
	}
	settle(t, ctx, s.client, []string{unpaid, paid})
	must(t)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: paid, PaymentID: "p-1", Amount: 300}))
	if v, _ := s.client.GetStock(ctx, "slow"); v.Reserved != 6 {
		t.Fatalf("stock %+v, want 6 reserved", v)
	}
	eventually.NoError(t, 20*time.Second, "the unpaid order to be cancelled after its 2s payment timeout", func() error {
		v, err := s.client.GetOrder(ctx, unpaid)
		if err != nil {
			return err
		}
		if v.State != domain.StateCancelled {
			return fmt.Errorf("still %s", v.State)
		}
		if !strings.Contains(v.Cancelled, "payment timeout") {
			t.Fatalf("cancelled for %q, want the payment timeout", v.Cancelled)
		}
		return nil
	})
	eventually.True(t, 10*time.Second, "the cancelled order's stock to be released", func() bool {
		v, _ := s.client.GetStock(ctx, "slow")
		return v.Reserved == 3 && v.Available == 7
	})
	time.Sleep(3 * time.Second) // past the paid order's deadline too
	if v, err := s.client.GetOrder(ctx, paid); err != nil || v.State != domain.StatePaid {
		t.Fatalf("the paid order is %s (%v) after its deadline, want paid", v.State, err)
	}
}

// TestPaymentRacesTimeout pays orders around their deadline: each ends
// either paid, or cancelled with the payment recorded and refunded in full
// — never a lost payment, never both.
func TestPaymentRacesTimeout(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	s := start(t, sagaConfig(t, t.TempDir(), timeout))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "race", 100, ""); err != nil {
		t.Fatal(err)
	}
	const n = 24
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		must(t)(s.client.PlaceOrder(ctx, oneLine(ids[i], "race", 1)))
	}
	views := settle(t, ctx, s.client, ids)
	var wg sync.WaitGroup
	for i, id := range ids {
		reserved := views[id].UpdatedAt
		// Spread the payments from well before to well after the deadline.
		at := reserved.Add(timeout - 600*time.Millisecond + time.Duration(i)*50*time.Millisecond)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(at))
			_, err := s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "p-" + id[:8], Amount: 100})
			if err != nil && !errors.Is(err, domain.ErrIllegalTransition) {
				t.Errorf("pay %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	time.Sleep(timeout) // let any remaining timer fire
	var paid, refunded int
	for _, id := range ids {
		v, err := s.client.GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		switch v.State {
		case domain.StatePaid:
			paid++
			if v.Received.Amount != 100 || len(v.Refunds) != 0 {
				t.Errorf("paid order %s: %+v", id, v)
			}
		case domain.StateCancelled:
			refunded++
			if v.Received.Amount != 100 || len(v.Refunds) != 1 || v.Refunds[0].Amount.Amount != 100 {
				t.Errorf("order %s was cancelled by its timeout but its payment is not recorded and refunded: received %v, refunds %+v", id, v.Received, v.Refunds)
			}
		default:
			t.Errorf("order %s ended %s", id, v.State)
		}
	}
	t.Logf("%d paid in time, %d cancelled by the timeout with the late payment refunded", paid, refunded)
	if paid == 0 || refunded == 0 {
		t.Logf("the race went only one way this run (the spread covers both sides of the deadline)")
	}
}

const sagaChildEnv = "ORDO_TEST_SAGA_CHILD"

// TestSagaProcessKilled runs the service (workers and saga) in a child
// process, kills it with SIGKILL while a sale of two SKUs runs, starts
// another on the same data directory, and checks every order ends in
// exactly one consistent state: awaiting payment with every line reserved,
// or cancelled as sold out with nothing reserved; the stock's reservations
// are exactly those of the orders awaiting payment.
func TestSagaProcessKilled(t *testing.T) {
	if os.Getenv(sagaChildEnv) != "" {
		sagaChild()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns, es := parentServers(t, ctx, t.TempDir())
	childDir := t.TempDir() // shared by both children: the saga resumes from its checkpoint there
	child := func() *exec.Cmd {
		return startChild(t, "TestSagaProcessKilled", sagaChildEnv, ns, es, childDir)
	}
	first := child()
	client, _ := flashSaleClient(t, ctx, ns, 30*time.Second, "the child service")
	const orders = 400
	sale := placeFlashSale(t, ctx, client, orders, orders)
	sale.waitPlaced(int64(orders * (20 + rand.IntN(40)) / 100))
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()
	t.Logf("killed the service after %d of %d orders were placed", sale.placed.Load(), orders)
	second := child()
	defer func() { _ = second.Process.Signal(syscall.SIGKILL); _ = second.Wait() }()
	sale.wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkSoldOut(t, ctx, client, sale.ids)
}

// flashSaleClient connects a client to the parent's NATS server and, once
// the service (a child process) answers within wait, stocks the flash sale
// of checkSoldOut: 150 units of SKU a, 100 of SKU b. It returns the
// client and its connection.
func flashSaleClient(t *testing.T, ctx context.Context, ns *ordonats.EmbeddedServer, wait time.Duration, what string) (*ordonats.Client, *natsgo.Conn) {
	t.Helper()
	nc, err := natsgo.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, wait, what, func() bool {
		_, err := client.AddStock(ctx, "a", 150, "stock-a")
		return err == nil
	})
	if _, err := client.AddStock(ctx, "b", 100, "stock-b"); err != nil {
		t.Fatal(err)
	}
	return client, nc
}

// flashSale is a flash sale under way: its orders, how many are placed so
// far, and the clients still placing them.
type flashSale struct {
	ids    []string
	placed atomic.Int64
	wg     sync.WaitGroup
}

// placeFlashSale places orders orders of one unit of SKUs a and b each
// from at most clients goroutines at a time, each order tried up to 20
// times under its own command ID (an order already placed counts), and
// returns at once.
func placeFlashSale(t *testing.T, ctx context.Context, client *ordonats.Client, orders, clients int) *flashSale {
	t.Helper()
	s := &flashSale{ids: make([]string, orders)}
	sem := make(chan struct{}, clients)
	for i := range s.ids {
		s.ids[i] = uuid.NewString()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := domain.PlaceOrder{Order: s.ids[i], CustomerID: "c", Currency: "EUR",
				Lines: []domain.Line{{SKU: "a", Quantity: 1, UnitPrice: 100}, {SKU: "b", Quantity: 1, UnitPrice: 50}}}
			for attempt := 0; attempt < 20; attempt++ {
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := client.PlaceOrder(actx, cmd, ordonats.WithCommandID(s.ids[i]))
				cancel()
				if err == nil || errors.Is(err, domain.ErrIllegalTransition) {
					s.placed.Add(1)
					return
				}
			}
			t.Errorf("order %s could not be placed", s.ids[i])
		}()
	}
	return s
}

// waitPlaced returns once n orders are placed, or every client gave up.
func (s *flashSale) waitPlaced(n int64) {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	for s.placed.Load() < n {
		select {
		case <-done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// checkSoldOut waits for the flash sale's orders to settle and checks
// that exactly the 100 units of SKU b were sold: 100 orders await payment
// holding one unit of SKUs a and b each, the rest were cancelled for lack
// of stock, and both SKUs reserve exactly what those orders hold.
func checkSoldOut(t *testing.T, ctx context.Context, client *ordonats.Client, ids []string) {
	t.Helper()
	views := settle(t, ctx, client, ids)
	var awaiting int64
	for id, v := range views {
		switch {
		case v.State == domain.StateAwaitingPayment:
			awaiting++
		case v.State == domain.StateCancelled && strings.Contains(v.Cancelled, string(domain.CodeOutOfStock)):
		default:
			t.Errorf("order %s ended %s (%q)", id, v.State, v.Cancelled)
		}
	}
	// Reservations settle asynchronously after a rejection (the release
	// follows StockRejected): wait for the stock to agree.
	eventually.True(t, 30*time.Second, "the stock to match the orders awaiting payment", func() bool {
		a, errA := client.GetStock(ctx, "a")
		b, errB := client.GetStock(ctx, "b")
		return errA == nil && errB == nil && a.Reserved == awaiting && b.Reserved == awaiting && a.Available >= 0 && b.Available >= 0
	})
	if awaiting != 100 {
		t.Fatalf("%d orders awaiting payment, want 100 (SKU b holds 100 units, every order takes one of each)", awaiting)
	}
}

// sagaChild runs the whole service against the parent's servers until it
// is killed.
func sagaChild() {
	serveChild(func(cfg *serve.Config) { cfg.PaymentTimeout = time.Hour })
}

// TestStockQueries reads a SKU's stock over HTTP and over NATS, as a sale's
// dashboard would, and gets a 400 for a malformed SKU.
func TestStockQueries(t *testing.T) {
	s := start(t, sagaConfig(t, t.TempDir(), time.Hour))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "dash", 5, ""); err != nil {
		t.Fatal(err)
	}
	must(t)(s.client.PlaceOrder(ctx, oneLine(uuid.NewString(), "dash", 2)))
	eventually.True(t, 10*time.Second, "the reservation", func() bool {
		v, _ := s.client.GetStock(ctx, "dash")
		return v.Reserved == 2
	})
	resp, err := http.Get("http://" + s.svc.HTTPAddr() + "/v1/stock/dash")
	if err != nil {
		t.Fatal(err)
	}
	var view domain.StockView
	err = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || view != (domain.StockView{SKU: "dash", OnHand: 5, Reserved: 2, Available: 3, Revision: 1}) {
		t.Fatalf("GET /v1/stock/dash: %d %+v %v", resp.StatusCode, view, err)
	}
	m, err := s.nc.Request(ordonats.SubjectQueryPrefix+"stock.dash", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var overNATS domain.StockView
	if err := json.Unmarshal(m.Data, &overNATS); err != nil || overNATS != view {
		t.Fatalf("stock over NATS: %s (%v), want %+v", m.Data, err, view)
	}
	resp, err = http.Get("http://" + s.svc.HTTPAddr() + "/v1/stock/bad%20sku")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed SKU: %d, want 400", resp.StatusCode)
	}
}

// TestSagaResumesAfterStoreRestart stops the event store under a running
// service and starts it again: the saga resumes from its checkpoint by
// itself and reserves stock for an order placed after the restart.
func TestSagaResumesAfterStoreRestart(t *testing.T) {
	if os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("restarts its own event store")
	}
	ctx := ctxT(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	esDir := t.TempDir()
	es, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: esDir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() }) // after the service stops (cleanups run last-in first-out)
	cfg := sagaConfig(t, t.TempDir(), time.Hour)
	cfg.ESDBURL = es.URL()
	s := start(t, cfg)
	if _, err := s.client.AddStock(ctx, "r", 10, "stock-r"); err != nil {
		t.Fatal(err)
	}
	first := uuid.NewString()
	must(t)(s.client.PlaceOrder(ctx, oneLine(first, "r", 1)))
	settle(t, ctx, s.client, []string{first})

	es.Close()
	time.Sleep(500 * time.Millisecond) // the saga's subscription notices
	if es, err = esdbserver.Start(ctx, esdbserver.Config{DataDir: esDir, Listen: addr}); err != nil {
		t.Fatal(err)
	}
	second := uuid.NewString()
	for attempt := 0; ; attempt++ {
		_, err := s.client.PlaceOrder(ctx, oneLine(second, "r", 1), ordonats.WithCommandID("place-"+second))
		if err == nil {
			break
		}
		if attempt == 50 {
			t.Fatalf("placing after the restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if v := settle(t, sctx, s.client, []string{second})[second]; v.State != domain.StateAwaitingPayment {
		t.Fatalf("the order placed after the restart is %s (%q), want awaiting_payment", v.State, v.Cancelled)
	}
	if v, err := s.client.GetStock(ctx, "r"); err != nil || v.Reserved != 2 {
		t.Fatalf("stock %+v (%v), want 2 reserved", v, err)
	}
}
