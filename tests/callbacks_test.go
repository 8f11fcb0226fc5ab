package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/callbacksig"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// callbackReply is the body of POST /v1/payments/callback.
type callbackReply struct {
	CommandID string              `json:"command_id"`
	OrderID   string              `json:"order_id"`
	PaymentID string              `json:"payment_id"`
	Status    string              `json:"status"`
	Duplicate bool                `json:"duplicate"`
	Events    []string            `json:"events"`
	State     string              `json:"state"`
	Revision  int64               `json:"revision"`
	Position  uint64              `json:"position"`
	Error     *ordonats.ErrorBody `json:"error"`
	Ignored   string              `json:"ignored"`
}

// postCallback sends a payment callback the way a provider does, signed
// with the service's callback secret.
func postCallback(tb testing.TB, s *system, body string) (int, callbackReply) {
	tb.Helper()
	return postSignedCallback(tb, s, body, s.sign(tb, body))
}

// postSignedCallback sends a payment callback with signature as its
// Ordo-Signature header (none if empty).
func postSignedCallback(tb testing.TB, s *system, body, signature string) (int, callbackReply) {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctxT(tb), http.MethodPost, "http://"+s.svc.HTTPAddr()+"/v1/payments/callback", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(callbacksig.Header, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var reply callbackReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		tb.Fatalf("status %d, body %q is not JSON: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, reply
}

func callbackJSON(orderID, paymentID, status string, amount int64) string {
	return fmt.Sprintf(`{"order_id":%q,"payment_id":%q,"amount":%d,"currency":"EUR","status":%q,"provider":"stripe"}`,
		orderID, paymentID, amount, status)
}

// awaitingOrder places an order and marks its stock reserved.
func awaitingOrder(tb testing.TB, s *system) string {
	tb.Helper()
	ctx := ctxT(tb)
	id := uuid.NewString()
	must(tb)(s.client.PlaceOrder(ctx, placeCmd(id)))
	must(tb)(s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id}))
	return id
}

func eventTypesOf(tb testing.TB, s *system, orderID string) []string {
	tb.Helper()
	var out []string
	for _, e := range streamEvents(tb, s, orderID) {
		out = append(out, e.Type)
	}
	return out
}

func countOf(types []string, typ string) int {
	n := 0
	for _, t := range types {
		if t == typ {
			n++
		}
	}
	return n
}

func wantOK(tb testing.TB, what string, status int, r callbackReply, events []string, duplicate bool) {
	tb.Helper()
	if status != http.StatusOK || r.Error != nil || !slices.Equal(r.Events, events) || r.Duplicate != duplicate {
		tb.Fatalf("%s: got %d %+v (error %+v); want 200 with events %v, duplicate %t", what, status, r, r.Error, events, duplicate)
	}
}

func TestPaymentCallbackDuplicates(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	id := awaitingOrder(t, s)
	body := callbackJSON(id, "pi_dup", "succeeded", total)

	// The same callback many times at once: one is applied, the others
	// get its outcome back.
	const n = 8
	var wg sync.WaitGroup
	statuses, replies := make([]int, n), make([]callbackReply, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], replies[i] = postCallback(t, s, body)
		}()
	}
	wg.Wait()
	first := -1
	for i := range n {
		if !replies[i].Duplicate {
			if first >= 0 {
				t.Fatalf("callbacks %d and %d were both applied", first, i)
			}
			first = i
		}
	}
	if first < 0 {
		t.Fatal("no callback was reported as the one applied")
	}
	for i := range n {
		wantOK(t, fmt.Sprintf("concurrent callback %d", i), statuses[i], replies[i], []string{"PaymentSucceeded"}, i != first)
		if r, f := replies[i], replies[first]; r.CommandID != f.CommandID || r.Revision != f.Revision || r.Position != f.Position || r.State != "paid" {
			t.Fatalf("concurrent callback %d: %+v differs from the first outcome %+v", i, r, f)
		}
	}
	// Again later, in sequence.
	status, again := postCallback(t, s, body)
	wantOK(t, "resent callback", status, again, []string{"PaymentSucceeded"}, true)
	if again.Revision != replies[first].Revision || again.Position != replies[first].Position {
		t.Fatalf("resent callback: %+v, want the first outcome %+v", again, replies[first])
	}
	if got := eventTypesOf(t, s, id); countOf(got, domain.EvtPaymentSucceeded) != 1 || len(got) != 3 {
		t.Fatalf("history %v, want exactly one PaymentSucceeded after placing and reserving", got)
	}
}

// TestPaymentCallbackOverNATS sends the callback the way a NATS client does
// (the documented wire format), then the same callback over HTTP.
func TestPaymentCallbackOverNATS(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	id := awaitingOrder(t, s)
	body := callbackJSON(id, "pi_nats", "succeeded", total)
	cb, err := domain.DecodePaymentCallback([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	js, _ := jetstream.New(s.nc)
	m := natsgo.NewMsg(ordonats.CommandSubject(id, domain.CmdPaymentCallback))
	m.Data = []byte(body)
	m.Header.Set(ordonats.HeaderMsgID, ordonats.CallbackCommandID(cb))
	m.Header.Set(ordonats.HeaderCommandID, ordonats.CallbackCommandID(cb))
	m.Header.Set(ordonats.HeaderReplyTo, inbox)
	m.Header.Set(ordonats.HeaderSignature, s.sign(t, body))
	if _, err := js.PublishMsg(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	var out ordonats.Outcome
	if err := json.Unmarshal(msg.Data, &out); err != nil || out.Error != nil || !slices.Equal(out.Events, []string{"PaymentSucceeded"}) {
		t.Fatalf("reply %s (%v), want PaymentSucceeded", msg.Data, err)
	}
	status, r := postCallback(t, s, body)
	wantOK(t, "the same callback over HTTP", status, r, []string{"PaymentSucceeded"}, true)
	if r.CommandID != ordonats.CallbackCommandID(cb) || r.Position != out.Position {
		t.Fatalf("HTTP reply %+v, want the NATS outcome %+v", r, out)
	}
}

func TestPaymentCallbacksOutOfOrder(t *testing.T) {
	s := start(t, config(t, t.TempDir()))

	t.Run("failed after succeeded changes nothing", func(t *testing.T) {
		id := awaitingOrder(t, s)
		status, r := postCallback(t, s, callbackJSON(id, "pi_1", "succeeded", total))
		wantOK(t, "succeeded", status, r, []string{"PaymentSucceeded"}, false)
		status, r = postCallback(t, s, callbackJSON(id, "pi_1", "failed", total))
		wantOK(t, "failed after succeeded", status, r, []string{}, true)
		if r.State != "paid" {
			t.Fatalf("state %q after a late failure, want paid", r.State)
		}
		if got := eventTypesOf(t, s, id); countOf(got, domain.EvtPaymentFailed) != 0 || countOf(got, domain.EvtPaymentSucceeded) != 1 {
			t.Fatalf("history %v, want one PaymentSucceeded and no PaymentFailed", got)
		}
	})

	t.Run("succeeded after failed pays", func(t *testing.T) {
		id := awaitingOrder(t, s)
		status, r := postCallback(t, s, callbackJSON(id, "pi_2", "failed", total))
		wantOK(t, "failed", status, r, []string{"PaymentFailed"}, false)
		status, r = postCallback(t, s, callbackJSON(id, "pi_2", "succeeded", total))
		wantOK(t, "succeeded after failed", status, r, []string{"PaymentSucceeded"}, false)
		if r.State != "paid" {
			t.Fatalf("state %q, want paid", r.State)
		}
		// The stale failure, resent, changes nothing.
		status, r = postCallback(t, s, callbackJSON(id, "pi_2", "failed", total))
		wantOK(t, "failed resent", status, r, []string{"PaymentFailed"}, true)
		view, err := s.client.GetOrder(ctxT(t), id)
		if err != nil || view.State != domain.StatePaid {
			t.Fatalf("order %+v, %v; want paid", view, err)
		}
	})

	t.Run("succeeded before the stock was reserved is taken on retry", func(t *testing.T) {
		ctx := ctxT(t)
		id := uuid.NewString()
		must(t)(s.client.PlaceOrder(ctx, placeCmd(id)))
		body := callbackJSON(id, "pi_3", "succeeded", total)
		status, r := postCallback(t, s, body)
		if status != http.StatusConflict || r.Error == nil || r.Error.Code != "illegal_transition" {
			t.Fatalf("callback on a placed order: %d %+v, want 409 illegal_transition", status, r)
		}
		must(t)(s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id}))
		status, r = postCallback(t, s, body) // the provider retries
		wantOK(t, "retried callback", status, r, []string{"PaymentSucceeded"}, false)
		status, r = postCallback(t, s, body)
		if status != http.StatusOK || !r.Duplicate || r.State != "paid" {
			t.Fatalf("second retry: %d %+v, want 200 duplicate, paid", status, r)
		}
		if got := eventTypesOf(t, s, id); countOf(got, domain.EvtPaymentSucceeded) != 1 {
			t.Fatalf("history %v, want one PaymentSucceeded", got)
		}
	})
}

func TestLatePaymentCallbackIsRefunded(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	id := awaitingOrder(t, s)
	must(t)(s.client.CancelOrder(ctx, domain.CancelOrder{Order: id, Reason: "payment timeout"}))
	body := callbackJSON(id, "pi_late", "succeeded", total)
	status, r := postCallback(t, s, body)
	wantOK(t, "late callback", status, r, []string{"PaymentSucceeded", "RefundRequested"}, false)
	if r.State != "cancelled" {
		t.Fatalf("state %q, want cancelled", r.State)
	}
	status, r = postCallback(t, s, body)
	wantOK(t, "late callback resent", status, r, []string{"PaymentSucceeded", "RefundRequested"}, true)

	evs := streamEvents(t, s, id)
	var late, refunds int
	for _, e := range evs {
		var data struct {
			Late      bool                   `json:"late"`
			Automatic bool                   `json:"automatic"`
			Amount    struct{ Amount int64 } `json:"amount"`
		}
		_ = json.Unmarshal(e.Data, &data)
		switch e.Type {
		case domain.EvtPaymentSucceeded:
			if !data.Late {
				t.Fatalf("PaymentSucceeded %s is not marked late", e.Data)
			}
			late++
		case domain.EvtRefundRequested:
			if !data.Automatic || data.Amount.Amount != total {
				t.Fatalf("RefundRequested %s, want an automatic refund of %d", e.Data, total)
			}
			refunds++
		}
	}
	if late != 1 || refunds != 1 {
		t.Fatalf("history has %d late payments and %d refunds, want 1 and 1", late, refunds)
	}
	view, err := s.client.GetOrder(ctx, id)
	if err != nil || view.State != domain.StateCancelled {
		t.Fatalf("order %+v, %v; want cancelled", view, err)
	}
}

// TestFailedCallbackOnCancelledOrder: a failure reported for an order that
// no longer awaits payment records nothing and is acknowledged with 200, so
// the provider stops resending it; the order is unchanged.
func TestFailedCallbackOnCancelledOrder(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	id := awaitingOrder(t, s)
	must(t)(s.client.CancelOrder(ctx, domain.CancelOrder{Order: id, Reason: "customer asked"}))
	before := eventTypesOf(t, s, id)
	for range 2 {
		status, r := postCallback(t, s, callbackJSON(id, "pi_failed_late", "failed", total))
		if status != http.StatusOK || r.Error != nil || r.Ignored == "" || len(r.Events) != 0 {
			t.Fatalf("failed callback on a cancelled order: %d %+v, want 200, ignored, no events", status, r)
		}
	}
	if after := eventTypesOf(t, s, id); len(after) != len(before) {
		t.Fatalf("history went from %v to %v", before, after)
	}
}

func TestPaymentCallbackBadInput(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	known := awaitingOrder(t, s)
	unknown := uuid.NewString()
	k := `"order_id":"` + known + `",`
	tests := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"malformed JSON", `{"order_id":`, 400, "invalid_command", ""},
		{"empty body", ``, 400, "invalid_command", ""},
		{"two objects", callbackJSON(known, "p", "succeeded", total) + `{}`, 400, "invalid_command", ""},
		{"unknown field", `{` + k + `"payment_id":"p","amount":2500,"currency":"EUR","status":"succeeded","tip":1}`, 400, "invalid_command", "tip"},
		{"missing payment ID", `{` + k + `"amount":2500,"currency":"EUR","status":"succeeded"}`, 400, "invalid_command", "payment_id"},
		{"missing status", `{` + k + `"payment_id":"p","amount":2500,"currency":"EUR"}`, 400, "invalid_command", "status"},
		{"unknown status", `{` + k + `"payment_id":"p","amount":2500,"currency":"EUR","status":"pending"}`, 400, "invalid_command", "status"},
		{"amount as string", `{` + k + `"payment_id":"p","amount":"2500","currency":"EUR","status":"succeeded"}`, 400, "invalid_command", "amount"},
		{"negative amount", `{` + k + `"payment_id":"p","amount":-1,"currency":"EUR","status":"succeeded"}`, 400, "invalid_command", "amount"},
		{"missing currency", `{` + k + `"payment_id":"p","amount":2500,"status":"succeeded"}`, 400, "invalid_command", "currency"},
		{"order ID not a UUID", `{"order_id":"42","payment_id":"p","amount":2500,"currency":"EUR","status":"succeeded"}`, 400, "invalid_command", "order_id"},
		{"oversized body", `{` + k + `"payment_id":"p","amount":2500,"currency":"EUR","status":"failed","reason":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "payload_too_large", ""},
		{"unknown order", callbackJSON(unknown, "p", "succeeded", total), 404, "not_found", ""},
		{"wrong currency", `{` + k + `"payment_id":"p-usd","amount":2500,"currency":"USD","status":"succeeded"}`, 422, "amount_mismatch", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for attempt := range 2 { // the same answer when the provider resends
				status, r := postCallback(t, s, tt.body)
				if status != tt.status || r.Error == nil || r.Error.Code != tt.code || r.Error.Field != tt.field {
					t.Fatalf("attempt %d: got %d %+v; want %d %s on field %q", attempt, status, r.Error, tt.status, tt.code, tt.field)
				}
			}
		})
	}
	if evs := streamEvents(t, s, unknown); len(evs) != 0 {
		t.Fatalf("bad callbacks appended %d events to an unknown order", len(evs))
	}
	if got := eventTypesOf(t, s, known); len(got) != 2 {
		t.Fatalf("bad callbacks changed the order: %v", got)
	}
	resp, err := http.Get("http://" + s.svc.HTTPAddr() + "/v1/payments/callback")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: status %d, want 405", resp.StatusCode)
	}

	// A payment that does not match the total is refused with its code but
	// recorded and refunded, never lost; resending it changes nothing more.
	body := callbackJSON(known, "pi_short", "succeeded", total-1)
	for attempt := range 2 {
		status, r := postCallback(t, s, body)
		if status != http.StatusUnprocessableEntity || r.Error == nil || r.Error.Code != "amount_mismatch" {
			t.Fatalf("attempt %d: mismatched amount: %d %+v, want 422 amount_mismatch", attempt, status, r)
		}
	}
	got := eventTypesOf(t, s, known)
	if want := []string{"OrderPlaced", "StockReserved", "PaymentAmountMismatched", "RefundRequested"}; !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	view, err := s.client.GetOrder(ctxT(t), known)
	if err != nil || view.State != domain.StateAwaitingPayment {
		t.Fatalf("order %+v, %v; want still awaiting payment", view, err)
	}
}
