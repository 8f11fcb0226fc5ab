package tests

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// TestClientCannotMarkStockWhileTheSagaReserves guards against oversell:
// with the saga on, an order placed for 5 units of a SKU with nothing
// available and marked reserved at once by the client must not reach
// awaiting_payment, to be paid and shipped with no stock behind it. Only
// the saga records the stock outcome: the client's MarkStockReserved
// and MarkStockRejected are refused (saga_only, 403), the saga rejects the
// order, and neither payment nor shipment goes through.
func TestClientCannotMarkStockWhileTheSagaReserves(t *testing.T) {
	s := start(t, sagaConfig(t, t.TempDir(), time.Hour))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "scarce", 3, ""); err != nil { // on hand, but not 5
		t.Fatal(err)
	}
	id := uuid.NewString()
	must(t)(s.client.PlaceOrder(ctx, oneLine(id, "scarce", 5)))
	out, err := s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id})
	if !errors.Is(err, domain.ErrSagaOnly) || len(out.Events) != 0 || out.Error == nil || !strings.Contains(out.Error.Message, "--manual-stock") {
		t.Fatalf("MarkStockReserved from a client: %+v, %v; want saga_only saying what to do", out, err)
	}
	if _, err := s.client.MarkStockRejected(ctx, domain.MarkStockRejected{Order: id, Reason: "because"}); !errors.Is(err, domain.ErrSagaOnly) {
		t.Fatalf("MarkStockRejected from a client: %v, want saga_only", err)
	}
	// The status a raw NATS client branches on.
	reply := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(reply)
	if err != nil {
		t.Fatal(err)
	}
	m := natsgo.NewMsg(ordonats.CommandSubject(id, domain.CmdMarkStockReserved))
	m.Header.Set(ordonats.HeaderMsgID, "raw-mark-"+id)
	m.Header.Set(ordonats.HeaderCommandID, "raw-mark-"+id)
	m.Header.Set(ordonats.HeaderReplyTo, reply)
	m.Data = []byte(`{"order_id":"` + id + `"}`)
	if err := s.nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if r, err := sub.NextMsg(10 * time.Second); err != nil || r.Header.Get(ordonats.HeaderStatus) != "403" {
		t.Fatalf("raw MarkStockReserved: %v, status %q", err, r.Header.Get(ordonats.HeaderStatus))
	}
	v := settle(t, ctx, s.client, []string{id})[id]
	if v.State != domain.StateCancelled || !strings.Contains(v.Cancelled, string(domain.CodeOutOfStock)) {
		t.Fatalf("the order is %s (%q), want cancelled by the saga for out_of_stock", v.State, v.Cancelled)
	}
	if _, err := s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "p-1", Amount: 500}); err != nil {
		t.Fatalf("a payment for the cancelled order must be recorded and refunded, got %v", err)
	}
	if _, err := s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "T"}); !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("shipping the cancelled order: %v, want illegal_transition", err)
	}
	if st, err := s.client.GetStock(ctx, "scarce"); err != nil || st.Reserved != 0 || st.OnHand != 3 {
		t.Fatalf("stock %+v, %v; want 3 on hand, none reserved", st, err)
	}
}

// TestOrderIDsAreCaseInsensitive: one UUID in upper and lower case is one
// order everywhere: placing it twice in two spellings
// makes one order and reserves its stock once; a raw client publishing an
// upper-case subject and body reaches it; the write-side query, the read
// model over HTTP and NATS, and a payment callback all find it by its
// upper-case ID; replies name it in lower case.
func TestOrderIDsAreCaseInsensitive(t *testing.T) {
	s := start(t, sagaConfig(t, t.TempDir(), time.Hour))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "case", 10, ""); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	upper := strings.ToUpper(id)
	first := must(t)(s.client.PlaceOrder(ctx, oneLine(id, "case", 2)))
	// The same order in upper case, subject and body, from the Go client
	// and from a raw NATS client: no second order.
	if out, err := s.client.PlaceOrder(ctx, oneLine(upper, "case", 2)); !errors.Is(err, domain.ErrIllegalTransition) || out.OrderID != id {
		t.Fatalf("PlaceOrder again in upper case: %+v, %v; want illegal_transition for order %s", out, err, id)
	}
	body, _ := json.Marshal(oneLine(upper, "case", 2))
	raw, err := s.client.Send(ctx, ordonats.Command{ID: "raw-" + id, Type: domain.CmdPlaceOrder, OrderID: upper, Body: body})
	if !errors.Is(err, domain.ErrIllegalTransition) || raw.OrderID != id {
		t.Fatalf("raw PlaceOrder on an upper-case subject: %+v, %v", raw, err)
	}
	if len(streamEvents(t, s, upper)) != 0 {
		t.Fatal("a stream was written for the upper-case spelling")
	}
	v := settle(t, ctx, s.client, []string{upper})[upper]
	if v.OrderID != id || v.State != domain.StateAwaitingPayment {
		t.Fatalf("GetOrder(%s): %+v, want order %s awaiting payment", upper, v, id)
	}
	if st, err := s.client.GetStock(ctx, "case"); err != nil || st.Reserved != 2 {
		t.Fatalf("stock %+v, %v; want 2 reserved once", st, err)
	}
	// The read model, over HTTP and NATS.
	base := "http://" + s.svc.HTTPAddr()
	var summary struct {
		OrderID string `json:"order_id"`
	}
	if code := getJSON(t, base+"/v1/orders/"+upper+"?min_position="+itoa(first.Position), &summary); code != http.StatusOK || summary.OrderID != id {
		t.Fatalf("GET /v1/orders/%s: %d %+v, want 200 for %s", upper, code, summary, id)
	}
	m, err := s.nc.Request("ordo.query.v1.orders."+upper, nil, 10*time.Second)
	if err != nil || m.Header.Get(ordonats.HeaderStatus) != "200" || !strings.Contains(string(m.Data), id) {
		t.Fatalf("ordo.query.v1.orders.%s: %v %s", upper, err, m.Data)
	}
	// A payment callback naming the order in upper case pays it, and the
	// same callback in lower case is the same report (a duplicate).
	code, cb := postCallback(t, s, callbackJSON(upper, "pi_case", domain.PaymentStatusSucceeded, 200))
	if code != http.StatusOK || cb.State != string(domain.StatePaid) || cb.OrderID != id {
		t.Fatalf("callback for %s: %d %+v, want 200 paid", upper, code, cb)
	}
	code, again := postCallback(t, s, callbackJSON(id, "pi_case", domain.PaymentStatusSucceeded, 200))
	if code != http.StatusOK || !again.Duplicate || again.CommandID != cb.CommandID {
		t.Fatalf("the same callback in lower case: %d %+v, want a duplicate of %s", code, again, cb.CommandID)
	}
	if types := eventTypesOf(t, s, id); countOf(types, domain.EvtOrderPlaced) != 1 || countOf(types, domain.EvtPaymentSucceeded) != 1 {
		t.Fatalf("order events %v, want one OrderPlaced and one PaymentSucceeded", types)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// stockReply sends a raw stock API request and returns the status and body.
func stockReply(tb testing.TB, s *system, subject, body string) (string, map[string]any) {
	tb.Helper()
	m, err := s.nc.Request(ordonats.SubjectStockPrefix+subject, []byte(body), 10*time.Second)
	if err != nil {
		tb.Fatalf("%s: %v", subject, err)
	}
	var out map[string]any
	if err := json.Unmarshal(m.Data, &out); err != nil {
		tb.Fatalf("%s: reply %q: %v", subject, m.Data, err)
	}
	return m.Header.Get(ordonats.HeaderStatus), out
}

func errorCode(reply map[string]any) string {
	e, _ := reply["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// TestStockAPIReservesOnlyForRealOrders checks the stock API's rules, through the running service (with --manual-stock, where
// clients reserve themselves): no reservation for an order that does not
// exist, a second reservation with another quantity is a conflict, error
// replies hold the error alone in plain words, an oversized body is 413,
// and a SKU that never had stock is not found, over NATS and HTTP.
func TestStockAPIReservesOnlyForRealOrders(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "api", 10, ""); err != nil {
		t.Fatal(err)
	}
	ghost := uuid.NewString()
	if _, err := s.client.ReserveStock(ctx, "api", ghost, 1, ""); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("reserve for an order that does not exist: %v, want not_found", err)
	}
	id := uuid.NewString()
	must(t)(s.client.PlaceOrder(ctx, oneLine(id, "api", 3)))
	if r, err := s.client.ReserveStock(ctx, "api", strings.ToUpper(id), 3, "reserve-1"); err != nil || r.Reserved != 3 || len(r.Events) != 1 {
		t.Fatalf("reserve the order's 3 (its ID in upper case): %+v, %v", r, err)
	}
	if r, err := s.client.ReserveStock(ctx, "api", id, 3, "reserve-1"); err != nil || len(r.Events) != 0 || r.Reserved != 3 {
		t.Fatalf("the same reservation again: %+v, %v; want success, nothing changed", r, err)
	}
	status, reply := stockReply(t, s, "api.reserve", `{"command_id":"reserve-2","order_id":"`+id+`","quantity":2}`)
	if status != "409" || errorCode(reply) != string(domain.CodeReservationConflict) || len(reply) != 1 {
		t.Fatalf("a second reservation with another quantity: %s %v, want 409 reservation_conflict and nothing else", status, reply)
	}
	if st, err := s.client.GetStock(ctx, "api"); err != nil || st.Reserved != 3 {
		t.Fatalf("stock %+v, %v; want the 3 reserved once", st, err)
	}
	for _, tc := range []struct{ name, subject, body, status, code string }{
		{"70 KB body", "api.reserve", `{"command_id":"x","order_id":"` + id + `","quantity":3,"pad":"` + strings.Repeat("x", 70_000) + `"}`, "413", "payload_too_large"},
		{"quantity as text", "api.add", `{"command_id":"x","quantity":"ten"}`, "400", "invalid_command"},
		{"not JSON", "api.add", `{"command_id":`, "400", "invalid_command"},
		{"unknown SKU", "never-stocked.get", ``, "404", "not_found"},
	} {
		status, reply := stockReply(t, s, tc.subject, tc.body)
		e, _ := reply["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if status != tc.status || errorCode(reply) != tc.code || len(reply) != 1 || msg == "" || strings.Contains(msg, "json:") || strings.Contains(msg, "Go ") {
			t.Errorf("%s: %s %v, want %s %s alone, in plain words", tc.name, status, reply, tc.status, tc.code)
		}
	}
	resp, err := http.Get("http://" + s.svc.HTTPAddr() + "/v1/stock/never-stocked")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"not_found"`) || strings.Contains(string(b), "on_hand") {
		t.Fatalf("GET /v1/stock/never-stocked: %d %s, want 404 not_found", resp.StatusCode, b)
	}
}

// TestSagaOwnsReservationsWhileItReserves: with the saga on, clients can
// neither reserve (which could leave an order backed by another quantity)
// nor release (which would leave an order awaiting payment with nothing
// reserved) through the stock API; adding and reading still work. A fully
// refunded order that never shipped gives its stock back.
func TestSagaOwnsReservationsWhileItReserves(t *testing.T) {
	s := start(t, sagaConfig(t, t.TempDir(), time.Hour))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "owned", 5, ""); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	must(t)(s.client.PlaceOrder(ctx, oneLine(id, "owned", 2)))
	if v := settle(t, ctx, s.client, []string{id})[id]; v.State != domain.StateAwaitingPayment {
		t.Fatalf("order %s, want awaiting_payment", v.State)
	}
	if _, err := s.client.ReleaseStock(ctx, "owned", id, ""); !errors.Is(err, domain.ErrSagaOnly) {
		t.Fatalf("release by a client: %v, want saga_only", err)
	}
	if _, err := s.client.ReserveStock(ctx, "owned", id, 2, ""); !errors.Is(err, domain.ErrSagaOnly) {
		t.Fatalf("reserve by a client: %v, want saga_only", err)
	}
	if st, err := s.client.GetStock(ctx, "owned"); err != nil || st.Reserved != 2 {
		t.Fatalf("stock %+v, %v; want the saga's 2 reserved", st, err)
	}
	must(t)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "p", Amount: 200}))
	must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r", Amount: 200, Reason: "never mind"}))
	if out := must(t)(s.client.CompleteRefund(ctx, domain.CompleteRefund{Order: id, RefundID: "r"})); out.State != string(domain.StateRefunded) {
		t.Fatalf("after the full refund the order is %s, want refunded", out.State)
	}
	eventually.True(t, 30*time.Second, "the refunded order's stock released", func() bool {
		st, err := s.client.GetStock(ctx, "owned")
		return err == nil && st.Reserved == 0 && st.Available == 5
	})
}
