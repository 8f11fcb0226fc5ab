package tests

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
)

const staleWriterChildEnv = "ORDO_TEST_STALEWRITER_CHILD"

// staleSKUs are the SKUs of every order of TestStaleWriterPaused: one
// unit of the first, two of the second, so a reservation spans two lanes.
var staleSKUs = []struct {
	sku string
	qty int64
}{{"stale-a", 1}, {"stale-b", 2}}

// staleOnHand is each SKU's stock at the start: enough for every order, so
// no order is rejected and every unit held is an order's.
const staleOnHand = 10000

// TestStaleWriterPaused runs two `ordo serve` instances (child processes)
// on one NATS and one event store under a bounded load of orders placed,
// some cancelled at once (racing their reservation), some paid and
// cancelled, some paid and shipped, some left awaiting payment, and
// freezes the holder of the writer lease with SIGSTOP, longer than the
// lease's TTL, so the other instance takes over, then lets it run on
// (SIGCONT) — a few times. The frozen holder wakes up with reservations its
// saga asked for before it froze, which the new holder has meanwhile made
// and settled; it must not append them again. At the end every SKU holds
// exactly the units of the orders that still hold them (awaiting payment,
// paid), none for cancelled ones, shipped ones committed; no acknowledged
// command is lost or applied twice.
func TestStaleWriterPaused(t *testing.T) {
	if os.Getenv(staleWriterChildEnv) != "" {
		serveChild(func(cfg *serve.Config) {
			cfg.PaymentTimeout, cfg.LeaseTTL = time.Hour, instancesLeaseTTL
			// Warnings and errors to a file the parent reads: how often
			// the fence refused a stale writer.
			if f, err := os.Create(filepath.Join(cfg.DataDir, "warnings.log")); err == nil {
				cfg.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
		})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns, es := parentServers(t, ctx, t.TempDir())
	dirs := map[string]*exec.Cmd{}
	for range 2 {
		dir := t.TempDir()
		cmd := startChild(t, "TestStaleWriterPaused", staleWriterChildEnv, ns, es, dir)
		dirs[dir] = cmd
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGCONT)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
			}
		})
	}
	client, nc := flashSaleClient(t, ctx, ns, 60*time.Second, "the instances")
	for _, s := range staleSKUs {
		if _, err := client.AddStock(ctx, s.sku, staleOnHand, "stock-"+s.sku); err != nil {
			t.Fatal(err)
		}
	}
	js, _ := jetstream.New(nc)
	leases, err := js.KeyValue(ctx, ordonats.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	holder := func() string {
		e, err := leases.Get(ctx, "saga-and-stock")
		if err != nil {
			return ""
		}
		return string(e.Value())
	}
	holderCmd := func(h string) *exec.Cmd {
		for dir, cmd := range dirs {
			if strings.HasSuffix(h, ":"+dir) {
				return cmd
			}
		}
		return nil
	}

	// Each pause either lasts until the other instance holds the lease, or
	// about the lease's TTL: the frozen holder then wakes around when its
	// key expires, before or after the other claims the saga's checkpoint,
	// with its own lease lost or, sometimes, still renewable.
	pauses := []time.Duration{0, instancesLeaseTTL * 9 / 10, 0, instancesLeaseTTL, 0, instancesLeaseTTL * 11 / 10}
	const orders = 200
	ids, done, wait := startLifecycles(ctx, t, orders, 8, func(ctx context.Context, id string, kind int) error {
		return staleLifecycle(ctx, client, id, kind)
	})
	for n, pause := range pauses {
		for done.Load() < int64((n+1)*orders/(len(pauses)+1)) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		var before string
		eventually.True(t, 30*time.Second, "an instance to hold the writer lease", func() bool {
			before = holder()
			return before != ""
		})
		victim := holderCmd(before)
		if victim == nil {
			t.Fatalf("pause %d: the writer lease is held by %q, neither instance (%v)", n+1, before, dirs)
		}
		if err := victim.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		if pause == 0 {
			eventually.True(t, 30*time.Second, "the other instance to take the writer lease", func() bool {
				h := holder()
				return h != "" && h != before
			})
			// Let the new holder go over the frozen one's orders and
			// settle some before the frozen one wakes up.
			time.Sleep(instancesLeaseTTL / 2)
		} else {
			time.Sleep(pause)
		}
		if err := victim.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		t.Logf("pause %d: froze the writer lease holder for %v, after %d of %d orders went through their lifecycle",
			n+1, time.Since(stopped).Round(10*time.Millisecond), done.Load(), orders)
	}
	wait()
	if t.Failed() {
		t.FailNow()
	}
	views := settle(t, ctx, client, ids)
	held, shipped := int64(0), int64(0)
	for i, id := range ids {
		v := views[id]
		want := []domain.State{domain.StateCancelled, domain.StateShipped, domain.StateCancelled, domain.StateAwaitingPayment}[i%4]
		if v.State != want {
			t.Errorf("order %s (kind %d) ended %s (%q); want %s", id, i%4, v.State, v.Cancelled, want)
		}
		switch v.State {
		case domain.StateAwaitingPayment, domain.StatePaid:
			held++
		case domain.StateShipped:
			shipped++
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Releases and commits follow the orders' events: wait for the stock
	// to agree, then say how it differs if it never does.
	agree := func() (bool, string) {
		var diff []string
		for _, s := range staleSKUs {
			v, err := client.GetStock(ctx, s.sku)
			want := domain.StockView{SKU: s.sku, OnHand: staleOnHand - shipped*s.qty, Reserved: held * s.qty}
			if err != nil || v.OnHand != want.OnHand || v.Reserved != want.Reserved || v.Available != want.OnHand-want.Reserved {
				diff = append(diff, fmt.Sprintf("%s: on hand %d reserved %d available %d (%v); want %d, %d, %d",
					s.sku, v.OnHand, v.Reserved, v.Available, err, want.OnHand, want.Reserved, want.OnHand-want.Reserved))
			}
		}
		return len(diff) == 0, strings.Join(diff, "; ")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, diff := agree()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stock never matched the orders (%d holding units, %d shipped): %s", held, shipped, diff)
		}
		time.Sleep(50 * time.Millisecond)
	}

	store, err := eventstore.Connect(ctx, es.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	checkOnceEach(t, ctx, store, ids)
	fenced, lost := 0, 0
	for dir := range dirs {
		b, _ := os.ReadFile(filepath.Join(dir, "warnings.log"))
		fenced += strings.Count(string(b), commands.ErrNotStockWriter.Error())
		lost += strings.Count(string(b), "lease lost")
	}
	t.Logf("%d stock requests refused by the fence; the lease lost %d times", fenced, lost)
}

// checkOnceEach: nothing lost, nothing doubled — every order stream holds
// its OrderPlaced once and no command's event twice, and every SKU stream holds
// each order's reservation at most once.
func checkOnceEach(t *testing.T, ctx context.Context, store *eventstore.Store, ids []string) {
	t.Helper()
	for _, id := range ids {
		seen, placedN := map[string]bool{}, 0
		var history []string
		err := store.ReadStream(ctx, "order-"+id, 0, func(e eventstore.RecordedEvent) error {
			ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
			if err != nil {
				return err
			}
			history = append(history, fmt.Sprintf("%d %s %s", e.Revision, e.Type, ev.Meta.CommandID))
			// One command may append several events (a paid order's
			// cancellation requests its refund), each once.
			key := ev.Meta.CommandID + " " + e.Type
			if seen[key] {
				return fmt.Errorf("command %s applied twice: %s", ev.Meta.CommandID, strings.Join(history, ", "))
			}
			seen[key] = true
			if e.Type == domain.EvtOrderPlaced {
				placedN++
			}
			return nil
		})
		if err != nil || placedN != 1 {
			t.Fatalf("order %s: %v, %d OrderPlaced; want exactly one", id, err, placedN)
		}
	}
	for _, s := range staleSKUs {
		reserved := map[string]int{}
		err := store.ReadStream(ctx, domain.StockStream(s.sku), 0, func(e eventstore.RecordedEvent) error {
			ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
			if err != nil {
				return err
			}
			if r, ok := ev.Data.(domain.InventoryReserved); ok {
				if r.OrderID != "" {
					reserved[r.OrderID]++
				}
				for _, o := range r.Orders {
					reserved[o.OrderID]++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for order, n := range reserved {
			if n != 1 {
				t.Errorf("SKU %s: order %s reserved %d times; want once", s.sku, order, n)
			}
		}
	}
}

// staleLifecycle takes one order of TestStaleWriterPaused through its
// lifecycle: kind 0 is cancelled right after it was placed, racing the
// saga's reservation; 1 paid and shipped; 2 paid and cancelled; 3 left
// awaiting payment. Each command is sent again under its ID until it is
// answered, so a command an instance took before it froze is applied once
// all the same.
func staleLifecycle(ctx context.Context, client *ordonats.Client, id string, kind int) error {
	send := func(what string, f func(ctx context.Context, opt ordonats.SendOption) error) error {
		return sendUntilAnswered(ctx, what, f)
	}
	lines := make([]domain.Line, len(staleSKUs))
	for i, s := range staleSKUs {
		lines[i] = domain.Line{SKU: s.sku, Quantity: s.qty, UnitPrice: 500}
	}
	if err := send("place", func(ctx context.Context, opt ordonats.SendOption) error {
		_, err := client.PlaceOrder(ctx, domain.PlaceOrder{Order: id, CustomerID: "c", Currency: "EUR", Lines: lines}, opt)
		return err
	}); err != nil {
		return err
	}
	cancelOrder := func(ctx context.Context, opt ordonats.SendOption) error {
		_, err := client.CancelOrder(ctx, domain.CancelOrder{Order: id, Reason: "changed mind"}, opt)
		return err
	}
	if kind == 0 {
		return send("cancel", cancelOrder)
	}
	if err := awaitAwaitingPayment(ctx, client, id, 90*time.Second); err != nil {
		return err
	}
	if kind == 3 {
		return nil
	}
	total := int64(0)
	for _, l := range lines {
		total += l.Quantity * l.UnitPrice
	}
	if err := send("pay", func(ctx context.Context, opt ordonats.SendOption) error {
		_, err := client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "pay-" + id, Amount: total, Currency: "EUR"}, opt)
		return err
	}); err != nil {
		return err
	}
	if kind == 2 {
		return send("cancel", cancelOrder)
	}
	return send("ship", func(ctx context.Context, opt ordonats.SendOption) error {
		_, err := client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "T-" + id}, opt)
		return err
	})
}
