package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for the test database admin
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

func getJSON(tb testing.TB, url string, into any) int {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

// readSide is where a test reads the read models: over HTTP at base and
// over NATS through nc.
type readSide struct {
	base  string
	nc    *natsgo.Conn
	close func() // stops what the read side started; before the service stops
}

// attachFunc gives a running service its read side for one test.
type attachFunc func(t *testing.T, s *system) *readSide

// forEachReadStore runs test with the read models in SQLite and, when
// ORDO_TEST_POSTGRES_DSN is set, in PostgreSQL: one suite for both stores.
func forEachReadStore(t *testing.T, test func(t *testing.T, attach attachFunc)) {
	t.Run("sqlite", func(t *testing.T) { test(t, serviceReadSide) })
	t.Run("postgres", func(t *testing.T) {
		dsn := projectionstest.FreshPostgres(t)
		test(t, func(t *testing.T, s *system) *readSide { return postgresReadSide(t, s, dsn) })
	})
}

// serviceReadSide is the service's own read side: SQLite files in its data
// directory, served on its HTTP address and NATS.
func serviceReadSide(_ *testing.T, s *system) *readSide {
	return &readSide{base: "http://" + s.svc.HTTPAddr(), nc: s.nc, close: func() {}}
}

// postgresReadSide keeps the read models in the PostgreSQL database dsn:
// a read-model manager fed by the service's event store over gRPC, served
// by the same query API over HTTP and, on a NATS server of its own (the
// service's NATS already answers the query subjects), over NATS.
func postgresReadSide(tb testing.TB, s *system, dsn string) *readSide {
	tb.Helper()
	ctx := ctxT(tb)
	es, err := eventstore.Connect(ctx, s.svc.ESDBURL())
	if err != nil {
		tb.Fatal(err)
	}
	m, err := projections.OpenManagerDSN(ctx, dsn, tb.TempDir(), serve.ProjectionSource{Store: es}, nil)
	if err != nil {
		es.Close()
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	projections.NewAPI(m, nil).Register(mux)
	srv := httptest.NewServer(mux)
	natsSrv, err := ordonats.StartEmbedded(ctx, ordonats.EmbeddedConfig{StoreDir: tb.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := natsgo.Connect(natsSrv.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := ordonats.ServeHTTPQueries(nc, mux, nil); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	rs := &readSide{base: srv.URL, nc: nc, close: func() {
		once.Do(func() {
			srv.Close()
			nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			natsSrv.Shutdown(ctx)
			if err := m.Close(); err != nil {
				tb.Errorf("close the PostgreSQL read models: %v", err)
			}
			es.Close()
		})
	}}
	tb.Cleanup(rs.close)
	return rs
}

// TestReadYourWrites: commands over NATS → event store → projection → HTTP.
// With the position a reply carries, the query sees the command's effect.
func TestReadYourWrites(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		s := start(t, config(t, t.TempDir()))
		rs := attach(t, s)
		ctx := ctxT(t)
		base := rs.base
		id := paidOrder(t, s)
		refund := must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r-1", Amount: 500, Reason: "scratch"}))
		done := must(t)(s.client.CompleteRefund(ctx, domain.CompleteRefund{Order: id, RefundID: "r-1"}))
		var o projections.OrderDetails
		url := fmt.Sprintf("%s/v1/orders/%s?min_position=%d", base, id, done.Position)
		if code := getJSON(t, url, &o); code != http.StatusOK {
			t.Fatalf("GET %s: status %d", url, code)
		}
		if o.State != "paid" || o.Payment.Status != projections.PaymentPartiallyRefunded || o.Payment.Paid != total || o.Payment.Refunded != 500 {
			t.Fatalf("read model after a partial refund: %+v", o)
		}
		if len(o.Refunds) != 1 || o.Refunds[0].Status != "completed" || o.Shipping.Status != projections.ShippingNotShipped {
			t.Fatalf("refunds %+v, shipping %+v", o.Refunds, o.Shipping)
		}
		if o.Revision != done.Revision || refund.Position >= done.Position {
			t.Fatalf("revision %d, want %d", o.Revision, done.Revision)
		}
		var st struct{ Projections []projections.Status }
		getJSON(t, base+"/v1/projections", &st)
		if len(st.Projections) != 1 || st.Projections[0].Position < done.Position || !st.Projections[0].Running || st.Projections[0].Error != "" {
			t.Fatalf("projection status %+v", st.Projections)
		}
	})
}

func TestQueryBadParameters(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		s := start(t, config(t, t.TempDir()))
		rs := attach(t, s)
		base := rs.base
		tests := []struct {
			path   string
			status int
			code   string
		}{
			{"/v1/orders/not-a-uuid", http.StatusBadRequest, "invalid_command"},
			{"/v1/orders/" + uuid.NewString(), http.StatusNotFound, "not_found"},
			{"/v1/orders/" + uuid.NewString() + "?min_position=abc", http.StatusBadRequest, "invalid_command"},
		}
		for _, tt := range tests {
			var body struct {
				Error struct{ Code, Message string }
			}
			if got := getJSON(t, base+tt.path, &body); got != tt.status || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Errorf("GET %s: %d %+v, want %d %s", tt.path, got, body, tt.status, tt.code)
			}
		}
	})
}

// TestProjectionRestart stops the service while the projection is still
// applying, restarts it on the same data, and checks every order's money
// in the read model: an event applied twice or lost would show.
func TestProjectionRestart(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		dir := t.TempDir()
		s := start(t, config(t, dir))
		rs := attach(t, s)
		ctx := ctxT(t)
		ids := make([]string, 15)
		var last uint64
		for i := range ids {
			ids[i] = paidOrder(t, s)
			for r := 0; r < 3; r++ {
				rid := fmt.Sprint("r-", r)
				must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: ids[i], RefundID: rid, Amount: 100, Reason: "x"}))
				last = must(t)(s.client.CompleteRefund(ctx, domain.CompleteRefund{Order: ids[i], RefundID: rid})).Position
			}
		}
		rs.close() // the projection may be mid-batch here
		s.stop(t)
		s2 := start(t, config(t, dir))
		base := attach(t, s2).base
		for _, id := range ids {
			var o projections.OrderDetails
			url := fmt.Sprintf("%s/v1/orders/%s?min_position=%d", base, id, last)
			if code := getJSON(t, url, &o); code != http.StatusOK {
				t.Fatalf("GET %s: %d", url, code)
			}
			if o.Payment.Paid != total || o.Payment.Refunded != 300 || len(o.Refunds) != 3 {
				t.Fatalf("order %s after restart: paid %d refunded %d refunds %d; want %d, 300, 3", id, o.Payment.Paid, o.Payment.Refunded, len(o.Refunds), total)
			}
		}
	})
}

// TestUndecodableEventStopsProjection writes an event the domain cannot
// decode: the projection stops with the reason visible in /v1/projections
// instead of skipping it, and its checkpoint stays before the event.
func TestUndecodableEventStopsProjection(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		s := start(t, config(t, t.TempDir()))
		rs := attach(t, s)
		store := connectStore(t, s.svc.ESDBURL())
		ctx := ctxT(t)
		bad := uuid.NewString()
		res, err := store.Append(ctx, "order-"+bad, eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: domain.EvtOrderPlaced, Data: []byte(`{"total":"lots"}`)})
		if err != nil {
			t.Fatal(err)
		}
		base := rs.base
		var p projections.Status
		eventually.True(t, 15*time.Second, "the projection to stop on an undecodable event", func() bool {
			var st struct{ Projections []projections.Status }
			getJSON(t, base+"/v1/projections", &st)
			p = st.Projections[0]
			return p.Error != ""
		})
		if p.Running || p.Position >= res.Position || !strings.Contains(p.Error, "order-"+bad) {
			t.Fatalf("stopped projection: %+v (bad event at %d)", p, res.Position)
		}
	})
}

func TestListsAndStats(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		s := start(t, config(t, t.TempDir()))
		rs := attach(t, s)
		ctx := ctxT(t)
		base := rs.base
		var last uint64
		for i := 0; i < 5; i++ {
			id := paidOrder(t, s)
			if i < 2 {
				last = must(t)(s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: fmt.Sprint(i)})).Position
			} else {
				last = must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r", Amount: 10, Reason: "x"})).Position
			}
		}
		unpaid := uuid.NewString()
		last = must(t)(s.client.PlaceOrder(ctx, placeCmd(unpaid))).Position
		// Paid but not shipped: three orders; paged two at a time.
		var page struct {
			Items []struct {
				OrderID string `json:"order_id"`
			}
			NextCursor string `json:"next_cursor"`
		}
		url := fmt.Sprintf("%s/v1/shipments?status=not_shipped&payment_status=paid&limit=2&min_position=%d", base, last)
		if code := getJSON(t, url, &page); code != http.StatusOK || len(page.Items) != 2 || page.NextCursor == "" {
			t.Fatalf("first page: %d %+v", code, page)
		}
		seen := page.Items[0].OrderID + page.Items[1].OrderID
		cursor := page.NextCursor
		page.Items, page.NextCursor = nil, ""
		if code := getJSON(t, base+"/v1/shipments?status=not_shipped&payment_status=paid&limit=2&cursor="+cursor, &page); code != http.StatusOK || len(page.Items) != 1 || page.NextCursor != "" {
			t.Fatalf("second page: %d %+v", code, page)
		}
		if strings.Contains(seen, page.Items[0].OrderID) {
			t.Fatal("the second page repeats a row of the first")
		}
		var refunds struct{ Items []map[string]any }
		if getJSON(t, base+"/v1/refunds?status=requested", &refunds); len(refunds.Items) != 3 {
			t.Fatalf("requested refunds: %d, want 3", len(refunds.Items))
		}
		var none struct{ Items []map[string]any }
		if getJSON(t, base+"/v1/payments?status=paid&older_than=24h", &none); len(none.Items) != 0 {
			t.Fatalf("payments older than a day: %d, want none", len(none.Items))
		}
		var stats map[string]map[string]int64
		getJSON(t, base+"/v1/stats", &stats)
		if stats["payments"]["paid"] != 5 || stats["payments"]["unpaid"] != 1 || stats["shipments"]["shipped"] != 2 || stats["orders"]["shipped"] != 2 {
			t.Fatalf("stats %v", stats)
		}
		for _, tc := range []struct{ path, param string }{
			{"/v1/payments?status=lost", "status"},
			{"/v1/payments?older_than=yesterday", "older_than"},
			{"/v1/refunds?limit=0", "limit"},
			{"/v1/shipments?limit=many", "limit"},
			{"/v1/payments?cursor=zzz", "cursor"},
			{"/v1/refunds?payment_status=paid", "payment_status"},
		} {
			var body struct {
				Error struct{ Code, Field, Message string }
			}
			if code := getJSON(t, base+tc.path, &body); code != http.StatusBadRequest || body.Error.Field != tc.param || body.Error.Message == "" {
				t.Errorf("GET %s: %d %+v, want 400 naming %s", tc.path, code, body.Error, tc.param)
			}
		}
	})
}

// TestQueriesOverNATS: the same queries over NATS request-reply, with the
// URL query string as the request body and the HTTP status in a header.
func TestQueriesOverNATS(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		s := start(t, config(t, t.TempDir()))
		rs := attach(t, s)
		ctx := ctxT(t)
		id := paidOrder(t, s)
		pos := must(t)(s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "T"})).Position
		m, err := rs.nc.RequestWithContext(ctx, ordonats.SubjectQueryPrefix+"orders."+id, []byte(fmt.Sprintf("min_position=%d", pos)))
		if err != nil {
			t.Fatal(err)
		}
		var o projections.OrderDetails
		if err := json.Unmarshal(m.Data, &o); err != nil || m.Header.Get(ordonats.HeaderStatus) != "200" || o.Shipping.Status != projections.ShippingShipped {
			t.Fatalf("order over NATS: status %s, %+v, %v", m.Header.Get(ordonats.HeaderStatus), o, err)
		}
		m, err = rs.nc.RequestWithContext(ctx, ordonats.SubjectQueryPrefix+"payments", []byte("status=lost"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(ordonats.HeaderStatus) != "400" || !strings.Contains(string(m.Data), `"field":"status"`) {
			t.Fatalf("bad parameter over NATS: %s %s", m.Header.Get(ordonats.HeaderStatus), m.Data)
		}
	})
}
