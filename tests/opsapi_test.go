package tests

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
)

// TestOrderHistoryEndpoint: GET /v1/orders/{id}/history is the order's
// timeline from the event store, event by event with the state after each
// (what `ordo history` prints), for an ID in any case; unknown orders and
// bad parameters are refused with the API's codes.
func TestOrderHistoryEndpoint(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	id := paidOrder(t, s)
	must(t)(s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "JD1"}))
	base := "http://" + s.svc.HTTPAddr()

	var tl serve.Timeline
	if resp, raw := call(t, http.MethodGet, base+"/v1/orders/"+strings.ToUpper(id)+"/history", &tl); resp.StatusCode != http.StatusOK {
		t.Fatalf("history: %d %s", resp.StatusCode, raw)
	}
	var types, states []string
	for i, e := range tl.Events {
		types, states = append(types, e.Type), append(states, string(e.State))
		if e.Revision != uint64(i) || e.CommandID == "" || e.Time.IsZero() || e.Problem != "" || len(e.Data) == 0 {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	wantTypes := []string{domain.EvtOrderPlaced, domain.EvtStockReserved, domain.EvtPaymentSucceeded, domain.EvtOrderShipped}
	wantStates := []string{"placed", "awaiting_payment", "paid", "shipped"}
	if tl.OrderID != id || tl.State != domain.StateShipped || !slices.Equal(types, wantTypes) || !slices.Equal(states, wantStates) {
		t.Errorf("history of %s: %s %s %v %v; want %s %v %v", id, tl.OrderID, tl.State, types, states, domain.StateShipped, wantTypes, wantStates)
	}
	for _, tt := range []struct {
		path   string
		status int
		code   string
		field  string
	}{
		{"/v1/orders/" + uuid.NewString() + "/history", http.StatusNotFound, "not_found", ""},
		{"/v1/orders/not-an-order/history", http.StatusBadRequest, "invalid_command", "id"},
		{"/v1/orders/" + id + "/history?from=2", http.StatusBadRequest, "invalid_command", "from"},
		{"/ui/nope.js", http.StatusNotFound, "not_found", ""}, // the page's assets answer like the API
	} {
		var body apiError
		if resp, raw := call(t, http.MethodGet, base+tt.path, &body); resp.StatusCode != tt.status || body.Error.Code != tt.code || body.Error.Field != tt.field {
			t.Errorf("GET %s: %d %s; want %d %s field %q", tt.path, resp.StatusCode, raw, tt.status, tt.code, tt.field)
		}
	}
}

// TestDeadLettersEndpoint: GET /v1/deadletters lists the newest dead
// letters first with their code, reason and command, and how many the
// stream holds; they hold command bodies, so only with the admin token.
func TestDeadLettersEndpoint(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	base := "http://" + s.svc.HTTPAddr()
	admin := s.adminHeader(t)
	call := func(tb testing.TB, method, u string, into any) (*http.Response, []byte) {
		tb.Helper()
		return callWith(tb, method, u, admin, into)
	}
	var empty serve.DeadLetterPage
	if resp, raw := call(t, http.MethodGet, base+"/v1/deadletters", &empty); resp.StatusCode != http.StatusOK || empty.Total != 0 || empty.Items == nil || len(empty.Items) != 0 {
		t.Fatalf("no dead letters yet: %d %s", resp.StatusCode, raw)
	}
	deadLetterOne(t, s, "dead-1")
	deadLetterOne(t, s, "dead-2")
	var page serve.DeadLetterPage
	if resp, raw := call(t, http.MethodGet, base+"/v1/deadletters?limit=1", &page); resp.StatusCode != http.StatusOK {
		t.Fatalf("dead letters: %d %s", resp.StatusCode, raw)
	}
	if page.Total != 2 || len(page.Items) != 1 {
		t.Fatalf("dead letters, limit 1: %+v; want 1 of 2", page)
	}
	d := page.Items[0]
	if d.CommandID != "dead-2" || d.Code != "invalid_command" || d.Reason == "" || d.CommandType != domain.CmdPlaceOrder ||
		uuid.Validate(d.OrderID) != nil || d.Body != `{"order_id":` || d.Time.IsZero() || !strings.HasPrefix(d.Subject, "ordo.cmd.order.") {
		t.Errorf("the newest dead letter: %+v", d)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "since=1"} {
		var body apiError
		field, _, _ := strings.Cut(q, "=")
		if resp, raw := call(t, http.MethodGet, base+"/v1/deadletters?"+q, &body); resp.StatusCode != http.StatusBadRequest || body.Error.Field != field {
			t.Errorf("GET /v1/deadletters?%s: %d %s; want 400 naming %s", q, resp.StatusCode, raw, field)
		}
	}
	// Without the token, with another one or another scheme: 401, and not
	// a byte of the dead letters.
	for name, h := range map[string]http.Header{
		"no token":    nil,
		"wrong token": {"Authorization": {"Bearer not-the-token"}},
		"basic":       {"Authorization": {"Basic " + strings.TrimPrefix(admin.Get("Authorization"), "Bearer ")}},
	} {
		var body apiError
		resp, raw := callWith(t, http.MethodGet, base+"/v1/deadletters?limit=1", h, &body)
		if resp.StatusCode != http.StatusUnauthorized || body.Error.Code != string(domain.CodeUnauthenticated) ||
			resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(string(raw), "dead-2") || strings.Contains(string(raw), "order_id") {
			t.Errorf("GET /v1/deadletters, %s: %d %s; want 401 unauthenticated with nothing of the dead letters", name, resp.StatusCode, raw)
		}
	}
}

// TestCommandRateEndpoint: GET /v1/commands/rate counts the commands the
// workers answered over the last ten minutes, and the refusals by code.
func TestCommandRateEndpoint(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	base := "http://" + s.svc.HTTPAddr()
	id := awaitingOrder(t, s) // two commands
	if _, err := s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "X"}); err == nil {
		t.Fatal("an order awaiting payment shipped")
	}
	var v serve.RateView
	if resp, raw := call(t, http.MethodGet, base+"/v1/commands/rate", &v); resp.StatusCode != http.StatusOK {
		t.Fatalf("rate: %d %s", resp.StatusCode, raw)
	}
	var sum int64
	for _, b := range v.Buckets {
		sum += b.Commands
	}
	if v.Commands != 3 || sum != 3 || v.Errors != 1 || v.ErrorsByCode["illegal_transition"] != 1 || v.BucketSeconds != 10 || len(v.Buckets) != 60 {
		t.Errorf("rate: %+v; want 3 commands in 60 buckets of 10 s, 1 illegal_transition", v)
	}
	var body apiError
	if resp, raw := call(t, http.MethodGet, base+"/v1/commands/rate?window=1h", &body); resp.StatusCode != http.StatusBadRequest || body.Error.Field != "window" {
		t.Errorf("rate with a parameter: %d %s; want 400 naming window", resp.StatusCode, raw)
	}
}
