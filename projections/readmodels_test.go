package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

func eur(n int64) domain.Money { return domain.Money{Amount: n, Currency: "EUR"} }

func placed(id string) domain.OrderPlaced {
	return domain.OrderPlaced{OrderID: id, CustomerID: "c-" + id[:4], Total: eur(1000),
		Lines: []domain.Line{{SKU: "sku-1", Quantity: 2, UnitPrice: 500}}}
}

// orderCase is an order's history and what the read models must say.
type orderCase struct {
	name     string
	events   func(id string) []domain.EventData
	state    string
	payment  string
	paid     int64
	refunded int64
	shipping string
	refunds  []string // refund statuses, in request order
}

var orderCases = []orderCase{
	{"delivered and completed after a failed attempt", func(id string) []domain.EventData {
		return []domain.EventData{placed(id), domain.StockReserved{},
			domain.PaymentFailed{PaymentID: "p0", Reason: "declined"},
			domain.PaymentSucceeded{PaymentID: "p1", Amount: eur(1000), Provider: "stripe"},
			domain.OrderShipped{Carrier: "dhl", TrackingNumber: "T1"}, domain.OrderDelivered{}, domain.OrderCompleted{}}
	}, "completed", projections.PaymentPaid, 1000, 0, projections.ShippingDelivered, nil},
	{"partially refunded, one refund rejected", func(id string) []domain.EventData {
		return []domain.EventData{placed(id), domain.StockReserved{},
			domain.PaymentSucceeded{PaymentID: "p1", Amount: eur(1000)},
			domain.RefundRequested{RefundID: "r1", Amount: eur(300), Reason: "scratch"},
			domain.RefundCompleted{RefundID: "r1", Amount: eur(300)},
			domain.RefundRequested{RefundID: "r2", Amount: eur(200), Reason: "late"},
			domain.RefundRejected{RefundID: "r2", Reason: "no"}}
	}, "paid", projections.PaymentPartiallyRefunded, 1000, 300, projections.ShippingNotShipped, []string{"completed", "rejected"}},
	{"cancelled after payment, refunded automatically", func(id string) []domain.EventData {
		return []domain.EventData{placed(id), domain.StockReserved{},
			domain.PaymentSucceeded{PaymentID: "p1", Amount: eur(1000)},
			domain.OrderCancelled{Reason: "changed mind"},
			domain.RefundRequested{RefundID: "auto", Amount: eur(1000), Reason: "cancelled", Automatic: true},
			domain.RefundCompleted{RefundID: "auto", Amount: eur(1000)}, domain.OrderRefunded{Amount: eur(1000)}}
	}, "refunded", projections.PaymentRefunded, 1000, 1000, projections.ShippingCancelled, []string{"completed"}},
	{"out of stock", func(id string) []domain.EventData {
		return []domain.EventData{placed(id), domain.StockRejected{Reason: "none left", SKUs: []string{"sku-1"}}}
	}, "cancelled", projections.PaymentCancelled, 0, 0, projections.ShippingCancelled, nil},
	{"shipped, waiting for delivery", func(id string) []domain.EventData {
		return []domain.EventData{placed(id), domain.StockReserved{},
			domain.PaymentSucceeded{PaymentID: "p1", Amount: eur(1000)}, domain.OrderShipped{Carrier: "ups", TrackingNumber: "T2"}}
	}, "shipped", projections.PaymentPaid, 1000, 0, projections.ShippingShipped, nil},
	{"just placed", func(id string) []domain.EventData { return []domain.EventData{placed(id)} },
		"placed", projections.PaymentUnpaid, 0, 0, projections.ShippingNotShipped, nil},
}

// appendCases writes every order case and returns their IDs and the head.
func appendCases(tb testing.TB, es *eventstore.Store) ([]string, uint64) {
	tb.Helper()
	var ids []string
	var last uint64
	for _, c := range orderCases {
		id := uuid.NewString()
		ids = append(ids, id)
		last = appendEvents(tb, es, id, eventstore.NoStream(), c.events(id)...)
	}
	return ids, last
}

// caseEvents counts the events of all order cases.
func caseEvents() int64 {
	var n int64
	for _, c := range orderCases {
		n += int64(len(c.events(uuid.NewString())))
	}
	return n
}

func checkCases(tb testing.TB, store *projections.Store, ids []string) {
	tb.Helper()
	ctx := waitCtx(tb)
	for i, c := range orderCases {
		o, err := store.GetOrder(ctx, ids[i])
		if err != nil {
			tb.Fatalf("%s: %v", c.name, err)
		}
		var refunds []string
		for _, r := range o.Refunds {
			refunds = append(refunds, r.Status)
		}
		if o.State != c.state || o.Payment.Status != c.payment || o.Payment.Paid != c.paid || o.Payment.Refunded != c.refunded ||
			o.Shipping.Status != c.shipping || !reflect.DeepEqual(refunds, c.refunds) {
			tb.Errorf("%s: got state %s, payment %s paid %d refunded %d, shipping %s, refunds %v; want %s, %s %d %d, %s, %v",
				c.name, o.State, o.Payment.Status, o.Payment.Paid, o.Payment.Refunded, o.Shipping.Status, refunds,
				c.state, c.payment, c.paid, c.refunded, c.shipping, c.refunds)
		}
		if o.Total != eur(1000) || len(o.Lines) != 1 || o.Lines[0].Quantity != 2 || o.Revision != int64(len(c.events(ids[i]))-1) {
			tb.Errorf("%s: summary %+v", c.name, o)
		}
	}
}

// TestReadModels applies one order of every kind and reads it back through
// every query.
func TestReadModels(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		ids, head := appendCases(t, es)
		store := tg.openStore(t)
		r, _ := runRunner(t, store, es)
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		checkCases(t, store, ids)
		if _, err := store.GetOrder(ctx, uuid.NewString()); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("unknown order: got %v, want ErrNotFound", err)
		}
		if st := r.Status(ctx); st.Events != caseEvents() || st.Error != "" || !st.Running {
			t.Errorf("status %+v, want %d events applied, running", st, caseEvents())
		}

		// Pages of two through all six shipments: each row once, in order.
		var seen []string
		q := projections.ListQuery{Limit: 2}
		for pages := 0; ; pages++ {
			page, err := store.ListShipments(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				seen = append(seen, it.OrderID)
			}
			if page.NextCursor == "" {
				break
			}
			if pages > 5 {
				t.Fatalf("paging does not end: %v", seen)
			}
			q.Cursor = page.NextCursor
		}
		if len(seen) != 6 || strings.Join(seen, "") != strings.Join(uniq(seen), "") {
			t.Errorf("shipment pages: %v, want the six orders once each", seen)
		}
		unshipped, err := store.ListShipments(ctx, projections.ListQuery{Status: projections.ShippingNotShipped, PaymentStatus: projections.PaymentPaid})
		if err != nil || len(unshipped.Items) != 0 {
			t.Errorf("paid, not shipped: %+v %v; want none", unshipped.Items, err)
		}
		refunds, err := store.ListRefunds(ctx, projections.ListQuery{})
		if err != nil || len(refunds.Items) != 3 {
			t.Fatalf("refunds: %+v %v; want 3", refunds.Items, err)
		}
		var automatic int
		for _, it := range refunds.Items {
			if it.Automatic {
				automatic++
			}
		}
		if automatic != 1 {
			t.Errorf("automatic refunds: %d, want 1", automatic)
		}
		paid, err := store.ListPayments(ctx, projections.ListQuery{Status: projections.PaymentPaid})
		if err != nil || len(paid.Items) != 2 {
			t.Errorf("paid payments: %+v %v; want 2", paid.Items, err)
		}
		stats, err := store.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]map[string]int64{
			"orders":    {"completed": 1, "paid": 1, "refunded": 1, "cancelled": 1, "shipped": 1, "placed": 1},
			"payments":  {"paid": 2, "partially_refunded": 1, "refunded": 1, "unpaid": 1, "cancelled": 1},
			"shipments": {"delivered": 1, "shipped": 1, "not_shipped": 2, "cancelled": 2},
			"refunds":   {"completed": 2, "rejected": 1},
		}
		if !reflect.DeepEqual(stats, want) {
			t.Errorf("stats %v, want %v", stats, want)
		}
	})
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// TestRunnerRestartAppliesOnce stops the runner while it catches up and
// starts a new one on the reopened store: every event is applied exactly
// once (read-model change and checkpoint commit together).
func TestRunnerRestartAppliesOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		const orders = 400
		head := fillOrders(t, es, orders)
		store := tg.openStore(t)
		r, stop := runRunner(t, store, es)
		for r.Status(ctx).Events == 0 {
			if err := r.WaitFor(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		stopped := r.Status(ctx).Events
		store.Close()

		store = tg.openStore(t)
		r, _ = runRunner(t, store, es)
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		if st := r.Status(ctx); st.Events != 5*orders {
			t.Errorf("events applied across the restart: %d, want %d (stopped after %d)", st.Events, 5*orders, stopped)
		}
		t.Logf("stopped after %d of %d events", stopped, 5*orders)
		page, err := store.ListPayments(ctx, projections.ListQuery{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Items {
			if p.Paid != 1000 || p.Status != projections.PaymentPaid {
				t.Fatalf("payment of %s: %+v; want 1000 paid once", p.OrderID, p.PaymentRow)
			}
		}
		stats, err := store.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != orders || stats["shipments"]["delivered"] != orders {
			t.Errorf("payments %d, stats %v; want %d delivered orders", len(page.Items), stats, orders)
		}
	})
}

// TestUndecodableEventStopsRunner: an event the domain cannot decode stops
// the projection with the reason, before the event, and it stays stopped
// after a restart instead of skipping the event.
func TestUndecodableEventStopsRunner(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		good := uuid.NewString()
		appendEvents(t, es, good, eventstore.NoStream(), placed(good))
		bad := uuid.NewString()
		res, err := es.Append(ctx, "order-"+bad, eventstore.NoStream(),
			eventstore.EventData{ID: uuid.New(), Type: domain.EvtOrderPlaced, Data: []byte(`{"total":"lots"}`)})
		if err != nil {
			t.Fatal(err)
		}
		store := tg.openStore(t)
		r := projections.NewRunner(store, serve.ProjectionSource{Store: es}, nil)
		if err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "order-"+bad) {
			t.Fatalf("Run: %v; want an error naming order-%s", err, bad)
		}
		st := r.Status(ctx)
		if st.Running || st.Error == "" || st.Position >= res.Position {
			t.Errorf("status %+v; want stopped with an error before %d", st, res.Position)
		}
		store.Close()

		store = tg.openStore(t)
		r = projections.NewRunner(store, serve.ProjectionSource{Store: es}, nil)
		if err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "stopped earlier") {
			t.Fatalf("Run after a restart: %v; want it to stay stopped", err)
		}
	})
}

// dump reads every row of the read models through their queries.
func dump(tb testing.TB, store *projections.Store, ids []string) map[string]string {
	tb.Helper()
	rows, err := projectionstest.Dump(waitCtx(tb), store, ids)
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// TestManagerRebuild rebuilds into the other generation (file or schema)
// while the live one serves, compares every row, and reopens the swapped-in
// generation after a restart.
func TestManagerRebuild(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		ids, _ := appendCases(t, es)
		head := fillOrders(t, es, 50)
		total := caseEvents() + 5*50 + 1 // and one more order below
		m := tg.openManager(t, es)
		defer func() { m.Close() }()
		live, liveRunner := m.Current()
		if err := liveRunner.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		first, second := tg.generations()
		if !tg.generationExists(t, first) {
			t.Fatalf("the first generation %s does not exist", first)
		}
		before := dump(t, live, ids)
		if err := rebuild(ctx, m); err != nil {
			t.Fatal(err)
		}
		rebuilt, _ := m.Current()
		if rebuilt == live {
			t.Fatal("the rebuild did not swap in new read models")
		}
		after := dump(t, rebuilt, ids)
		for k := range before {
			if before[k] != after[k] {
				t.Errorf("%s differs after the rebuild:\nlive:    %s\nrebuilt: %s", k, before[k], after[k])
			}
		}
		checkCases(t, rebuilt, ids)
		if tg.generationExists(t, first) || !tg.generationExists(t, second) {
			t.Errorf("after the rebuild: %s exists %v, %s exists %v; want only %s", first, tg.generationExists(t, first),
				second, tg.generationExists(t, second), second)
		}

		// The new generation keeps following, and a restart opens it.
		id := uuid.NewString()
		pos := appendEvents(t, es, id, eventstore.NoStream(), placed(id))
		if _, r := m.Current(); r.WaitFor(ctx, pos) != nil {
			t.Fatal("the swapped-in read models do not follow new events")
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		m = tg.openManager(t, es)
		store, r := m.Current()
		if err := r.WaitFor(ctx, pos); err != nil {
			t.Fatal(err)
		}
		if _, err := store.GetOrder(ctx, id); err != nil {
			t.Fatalf("after a restart: %v", err)
		}
		if st := r.Status(ctx); st.Events != total {
			t.Errorf("events in the reopened generation: %d, want %d", st.Events, total)
		}
		// A second rebuild goes back to the first generation, from scratch.
		if err := rebuild(ctx, m); err != nil {
			t.Fatal(err)
		}
		again, r := m.Current()
		checkCases(t, again, ids)
		if n := r.Status(ctx).Events; n != total {
			t.Errorf("second rebuild applied %d events, want %d", n, total)
		}
		if !tg.generationExists(t, first) || tg.generationExists(t, second) {
			t.Errorf("after the second rebuild: want only %s", first)
		}
	})
}

// rebuild runs a full rebuild with the default options.
func rebuild(ctx context.Context, m *projections.Manager) error {
	return m.Rebuild(ctx, projections.RebuildOptions{})
}

// TestOldSchemaProjectedAgain: read models in the schema before
// order_views are dropped when opened, and the projection applies the
// whole history again into the new tables.
func TestOldSchemaProjectedAgain(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		ids, head := appendCases(t, es)
		driver, dsn := "pgx", tg.dsn
		if dsn == "" {
			driver, dsn = "sqlite", filepath.Join(tg.dir, "rm.db")
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			`CREATE TABLE projection_state (name TEXT PRIMARY KEY, position BIGINT NOT NULL DEFAULT 0, events BIGINT NOT NULL DEFAULT 0,
				updated_at TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '')`,
			`INSERT INTO projection_state (name, position, events) VALUES ('orders', 999999, 7)`,
			`CREATE TABLE orders (order_id TEXT PRIMARY KEY)`,
			`CREATE TABLE payments (order_id TEXT PRIMARY KEY)`,
			`CREATE TABLE shipments (order_id TEXT PRIMARY KEY)`,
			`CREATE TABLE refunds (order_id TEXT NOT NULL, refund_id TEXT NOT NULL)`,
		} {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		store := tg.openStore(t)
		r, _ := runRunner(t, store, es)
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		checkCases(t, store, ids)
		if st := r.Status(ctx); st.Events != caseEvents() {
			t.Errorf("events applied after the schema change: %d, want %d", st.Events, caseEvents())
		}
	})
}

// TestRebuildFromRefused: a rebuild that would start after position 0
// would swap in read models without every earlier order; it is refused,
// naming the parameter, and the read models in use stay.
func TestRebuildFromRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		ids, head := appendCases(t, es)
		m := tg.openManager(t, es)
		defer m.Close()
		live, r := m.Current()
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		for _, opts := range []projections.RebuildOptions{{From: 10, Restart: true}, {From: head}} {
			var iq *projections.InvalidQueryError
			if err := m.Rebuild(ctx, opts); !errors.As(err, &iq) || iq.Param != "from" {
				t.Errorf("Rebuild(%+v): %v, want an invalid from", opts, err)
			}
			if err := m.StartRebuild(opts); !errors.As(err, &iq) || iq.Param != "from" {
				t.Errorf("StartRebuild(%+v): %v, want an invalid from", opts, err)
			}
		}
		if _, started := m.RebuildStatus(); started {
			t.Error("a refused rebuild was started")
		}
		if now, _ := m.Current(); now != live {
			t.Fatal("a refused rebuild swapped the read models")
		}
		checkCases(t, live, ids)
	})
}
