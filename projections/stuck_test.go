package projections_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
)

// at is an event and when it happened.
type at struct {
	ago  time.Duration
	data domain.EventData
}

// appendHistory appends an order's events, each with its own time (now
// minus ago) in its metadata, and returns the $all position of the last.
func appendHistory(tb testing.TB, es *eventstore.Store, id string, now time.Time, events ...at) uint64 {
	tb.Helper()
	var pos uint64
	for i, e := range events {
		meta := domain.EventMeta{CommandID: uuid.NewString(), OccurredAt: now.Add(-e.ago)}
		typ, data, md, err := domain.EncodeEvent(domain.Event{Type: e.data.EventType(), Data: e.data, Meta: meta})
		if err != nil {
			tb.Fatal(err)
		}
		exp := eventstore.Exact(uint64(i - 1))
		if i == 0 {
			exp = eventstore.NoStream()
		}
		res, err := es.Append(context.Background(), "order-"+id, exp, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md})
		if err != nil {
			tb.Fatal(err)
		}
		pos = res.Position
	}
	return pos
}

const day = 24 * time.Hour

// stuckHistories are orders whose statuses are old while their last
// change is recent, or the other way round: each stuck-order query must
// measure how long the order has been in the state it names.
var stuckHistories = map[string]func(id string) []at{
	// Placed ten days ago, paid an hour ago: not a day waiting to ship.
	"paid an hour ago": func(id string) []at {
		return []at{{10 * day, placed(id)}, {10 * day, domain.StockReserved{}}, {time.Hour, domain.PaymentSucceeded{PaymentID: "p", Amount: eur(1000)}}}
	},
	"paid two days ago": func(id string) []at {
		return []at{{10 * day, placed(id)}, {10 * day, domain.StockReserved{}}, {2 * day, domain.PaymentSucceeded{PaymentID: "p", Amount: eur(1000)}}}
	},
	// Cancelled after payment, its refund still pending: not waiting to
	// ship, and its refund waits since the cancellation.
	"cancelled, refund pending": func(id string) []at {
		return []at{{10 * day, placed(id)}, {10 * day, domain.StockReserved{}}, {5 * day, domain.PaymentSucceeded{PaymentID: "p", Amount: eur(1000)}},
			{4 * day, domain.OrderCancelled{Reason: "changed mind"}},
			{4 * day, domain.RefundRequested{RefundID: "auto", Amount: eur(1000), Reason: "cancelled", Automatic: true}}}
	},
	// Awaiting payment for half an hour, after its stock waited three days.
	"reserved half an hour ago": func(id string) []at {
		return []at{{3 * day, placed(id)}, {30 * time.Minute, domain.StockReserved{}}}
	},
	// The payment timed out: unpaid, but not awaiting payment any more.
	"cancelled unpaid": func(id string) []at {
		return []at{{3 * day, placed(id)}, {3 * day, domain.StockReserved{}}, {2 * day, domain.OrderCancelled{Reason: "payment timeout"}}}
	},
	// Failed two days ago and again an hour ago: failed for two days.
	"failed twice": func(id string) []at {
		return []at{{3 * day, placed(id)}, {3 * day, domain.StockReserved{}},
			{2 * day, domain.PaymentFailed{PaymentID: "p1", Reason: "declined"}}, {time.Hour, domain.PaymentFailed{PaymentID: "p2", Reason: "declined"}}}
	},
	// A wrong amount an hour ago changes the money, not the status: still
	// unpaid since it was placed two days ago.
	"unpaid, wrong amount an hour ago": func(id string) []at {
		return []at{{2 * day, placed(id)}, {2 * day, domain.StockReserved{}},
			{time.Hour, domain.PaymentAmountMismatched{PaymentID: "p", Amount: eur(999), Expected: eur(1000)}},
			{time.Hour, domain.RefundRequested{RefundID: "mismatch", Amount: eur(999), Reason: "amount mismatch", Automatic: true}}}
	},
	// Shipped three days ago, partly refunded an hour ago: still three days
	// on the road.
	"shipped three days ago": func(id string) []at {
		return []at{{10 * day, placed(id)}, {10 * day, domain.StockReserved{}}, {9 * day, domain.PaymentSucceeded{PaymentID: "p", Amount: eur(1000)}},
			{3 * day, domain.OrderShipped{Carrier: "dhl", TrackingNumber: "T"}},
			{2 * time.Hour, domain.RefundRequested{RefundID: "r", Amount: eur(100), Reason: "late"}},
			{time.Hour, domain.RefundCompleted{RefundID: "r", Amount: eur(100)}}}
	},
	// Shipped five days ago and refunded in full since: no delivery will
	// ever be recorded, so it is not waiting for one.
	"shipped, then refunded": func(id string) []at {
		return []at{{10 * day, placed(id)}, {10 * day, domain.StockReserved{}}, {9 * day, domain.PaymentSucceeded{PaymentID: "p", Amount: eur(1000)}},
			{5 * day, domain.OrderShipped{Carrier: "dhl", TrackingNumber: "T"}},
			{day, domain.RefundRequested{RefundID: "lost", Amount: eur(1000), Reason: "lost in transit"}},
			{day, domain.RefundCompleted{RefundID: "lost", Amount: eur(1000)}}, {day, domain.OrderRefunded{Amount: eur(1000)}}}
	},
}

// TestStuckOrderQueriesMeasureTheStateTheyName: every stuck-order query
// lists exactly the orders that have been in the state it names for
// longer than older_than, and a rebuild from the history gives the same
// rows.
func TestStuckOrderQueriesMeasureTheStateTheyName(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		now := time.Now()
		names := map[string]string{} // order ID → history name
		var ids []string
		var head uint64
		for name, history := range stuckHistories {
			id := uuid.NewString()
			names[id], ids = name, append(ids, id)
			head = appendHistory(t, es, id, now, history(id)...)
		}
		m := tg.openManager(t, es)
		defer m.Close()
		_, r := m.Current()
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			query string
			list  func(*projections.Store, projections.ListQuery) ([]string, error)
			q     projections.ListQuery
			want  []string
		}{
			{"paid, not shipped for a day (shipments)", listedShipments, projections.ListQuery{Status: "not_shipped", PaymentStatus: "paid", OlderThan: day},
				[]string{"paid two days ago"}},
			{"paid, not shipped for a day (orders)", listedOrders, projections.ListQuery{Status: "paid", OlderThan: day},
				[]string{"paid two days ago"}},
			{"awaiting payment for an hour", listedOrders, projections.ListQuery{Status: "awaiting_payment", OlderThan: time.Hour},
				[]string{"failed twice", "unpaid, wrong amount an hour ago"}},
			{"unpaid for a day", listedPayments, projections.ListQuery{Status: "unpaid", OlderThan: day},
				[]string{"reserved half an hour ago", "unpaid, wrong amount an hour ago"}},
			{"payment failed for a day", listedPayments, projections.ListQuery{Status: "failed", OlderThan: day},
				[]string{"failed twice"}},
			{"shipped, not delivered for two days (shipments)", listedShipments, projections.ListQuery{Status: "shipped", OlderThan: 2 * day},
				[]string{"shipped three days ago"}},
			{"shipped, not delivered for two days (orders)", listedOrders, projections.ListQuery{Status: "shipped", OlderThan: 2 * day},
				[]string{"shipped three days ago"}},
			{"refund requested for three days", listedRefunds, projections.ListQuery{Status: "requested", OlderThan: 3 * day},
				[]string{"cancelled, refund pending"}},
			{"not shipped at all", listedShipments, projections.ListQuery{Status: "not_shipped"},
				[]string{"failed twice", "paid an hour ago", "paid two days ago", "reserved half an hour ago", "unpaid, wrong amount an hour ago"}},
		}
		check := func(store *projections.Store) {
			t.Helper()
			for _, tt := range tests {
				ids, err := tt.list(store, tt.q)
				if err != nil {
					t.Fatalf("%s: %v", tt.query, err)
				}
				var got []string
				for _, id := range ids {
					got = append(got, names[id])
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s: got %q, want %q", tt.query, got, tt.want)
				}
			}
		}
		live, _ := m.Current()
		check(live)
		before := dump(t, live, ids)
		if err := rebuild(ctx, m); err != nil {
			t.Fatal(err)
		}
		rebuilt, _ := m.Current()
		check(rebuilt)
		after := dump(t, rebuilt, ids)
		for k := range before {
			if before[k] != after[k] {
				t.Errorf("%s differs after the rebuild:\nlive:    %s\nrebuilt: %s", k, before[k], after[k])
			}
		}
		o, err := rebuilt.GetOrder(ctx, idOf(names, "cancelled, refund pending"))
		if err != nil {
			t.Fatal(err)
		}
		if o.State != "cancelled" || o.Payment.Status != projections.PaymentPaid || o.Shipping.Status != projections.ShippingCancelled ||
			!o.StateSince.Equal(o.Shipping.StatusSince) || now.Sub(o.StateSince).Round(time.Hour) != 4*day ||
			now.Sub(o.Payment.StatusSince).Round(time.Hour) != 5*day {
			t.Errorf("cancelled with a refund pending: state %s since %v, payment %s since %v, shipping %s since %v",
				o.State, o.StateSince, o.Payment.Status, o.Payment.StatusSince, o.Shipping.Status, o.Shipping.StatusSince)
		}
	})
}

func idOf(names map[string]string, name string) string {
	for id, n := range names {
		if n == name {
			return id
		}
	}
	return ""
}

// allPages runs a list query page by page and returns every row.
func allPages[T any](list func(context.Context, projections.ListQuery) (projections.Page[T], error), q projections.ListQuery) ([]T, error) {
	q.Limit = 2 // several pages even here
	var out []T
	for pages := 0; pages < 100; pages++ {
		p, err := list(context.Background(), q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out, nil
		}
		q.Cursor = p.NextCursor
	}
	return nil, errors.New("paging does not end")
}

func listedOrders(s *projections.Store, q projections.ListQuery) ([]string, error) {
	items, err := allPages(s.ListOrders, q)
	return idsOf(items, func(it projections.OrderItem) string { return it.OrderID }), err
}

func listedPayments(s *projections.Store, q projections.ListQuery) ([]string, error) {
	items, err := allPages(s.ListPayments, q)
	return idsOf(items, func(it projections.PaymentItem) string { return it.OrderID }), err
}

func listedShipments(s *projections.Store, q projections.ListQuery) ([]string, error) {
	items, err := allPages(s.ListShipments, q)
	return idsOf(items, func(it projections.ShipmentItem) string { return it.OrderID }), err
}

func listedRefunds(s *projections.Store, q projections.ListQuery) ([]string, error) {
	items, err := allPages(s.ListRefunds, q)
	return idsOf(items, func(it projections.RefundItem) string { return it.OrderID }), err
}

func idsOf[T any](items []T, id func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

// TestListOrders pages through the order list newest first, by state and
// by customer, and refuses bad parameters naming them.
func TestListOrders(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		now := time.Now()
		var want []string // newest first
		var head uint64
		for i := range 7 {
			id := uuid.NewString()
			o := placed(id)
			o.CustomerID = []string{"c-even", "c-odd"}[i%2]
			events := []at{{time.Duration(7-i) * time.Hour, o}}
			if i%3 == 0 {
				events = append(events, at{time.Duration(7-i) * time.Hour, domain.StockReserved{}})
			}
			head = appendHistory(t, es, id, now, events...)
			want = append([]string{id}, want...)
		}
		store := tg.openStore(t)
		r, _ := runRunner(t, store, es)
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		all, err := listedOrders(store, projections.ListQuery{})
		if err != nil || !slices.Equal(all, want) {
			t.Fatalf("all orders: %v %v, want newest first %v", all, err, want)
		}
		evens, err := listedOrders(store, projections.ListQuery{Customer: "c-even"})
		if err != nil || !slices.Equal(evens, []string{want[0], want[2], want[4], want[6]}) {
			t.Errorf("customer c-even: %v %v", evens, err)
		}
		awaiting, err := listedOrders(store, projections.ListQuery{Status: "awaiting_payment"})
		if err != nil || !slices.Equal(awaiting, []string{want[0], want[3], want[6]}) {
			t.Errorf("awaiting payment: %v %v", awaiting, err)
		}
		both, err := listedOrders(store, projections.ListQuery{Status: "placed", Customer: "c-odd"})
		if err != nil || !slices.Equal(both, []string{want[1], want[5]}) {
			t.Errorf("placed, c-odd: %v %v", both, err)
		}
		page, err := store.ListOrders(ctx, projections.ListQuery{Limit: 1})
		if err != nil || len(page.Items) != 1 {
			t.Fatal(page, err)
		}
		if o := page.Items[0]; o.CustomerID != "c-even" || o.Total != eur(1000) || o.State != "awaiting_payment" ||
			o.PaymentStatus != "unpaid" || o.ShippingStatus != "not_shipped" || o.Revision != 1 || now.Sub(o.PlacedAt).Round(time.Hour) != time.Hour {
			t.Errorf("newest order: %+v", o)
		}
		payments, err := store.ListPayments(ctx, projections.ListQuery{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			q     projections.ListQuery
			param string
		}{
			{projections.ListQuery{Status: "lost"}, "state"},
			{projections.ListQuery{Customer: strings.Repeat("c", 129)}, "customer"},
			{projections.ListQuery{PaymentStatus: "paid"}, "payment_status"},
			{projections.ListQuery{Cursor: "zzz"}, "cursor"},
			{projections.ListQuery{Cursor: payments.NextCursor}, "cursor"}, // another list's cursor
			{projections.ListQuery{Limit: 501}, "limit"},
		} {
			_, err := store.ListOrders(ctx, tt.q)
			var iq *projections.InvalidQueryError
			if !errors.As(err, &iq) || iq.Param != tt.param {
				t.Errorf("ListOrders(%+v): %v, want an invalid %s", tt.q, err, tt.param)
			}
		}
	})
}
