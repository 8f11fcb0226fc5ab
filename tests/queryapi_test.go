package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
	"github.com/ordo-dev/ordo/projections"
)

// apiError is the JSON error every endpoint answers with.
type apiError struct {
	Error struct{ Code, Field, Message string }
}

// call sends an HTTP request and decodes the JSON answer into into.
func call(tb testing.TB, method, u string, into any) (*http.Response, []byte) {
	tb.Helper()
	return callWith(tb, method, u, nil, into)
}

// callWith is call with extra request headers.
func callWith(tb testing.TB, method, u string, header http.Header, into any) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctxT(tb), method, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if into != nil && method != http.MethodHead {
		if err := json.Unmarshal(body, into); err != nil {
			tb.Fatalf("%s %s: %d, not JSON: %q", method, u, resp.StatusCode, body)
		}
	}
	return resp, body
}

// checkCode fails unless code is one of the error-code table's.
func checkCode(tb testing.TB, what, code string) {
	tb.Helper()
	if !slices.Contains(domain.Codes(), domain.Code(code)) {
		tb.Errorf("%s answered code %q, which is not in the error-code table %v", what, code, domain.Codes())
	}
}

// TestUnknownRoutesAnswerJSON: what no endpoint serves is answered in the
// API's JSON error form, over HTTP and NATS, never in plain text.
func TestUnknownRoutesAnswerJSON(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	base := "http://" + s.svc.HTTPAddr()
	for _, tt := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/v1/nope", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "/nope", http.StatusNotFound, "not_found", ""}, // "/" is the operator's page
		{http.MethodPost, "/v1/stats", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
		{http.MethodDelete, "/v1/orders/" + uuid.NewString(), http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
		{http.MethodPut, "/v1/admin/rebuild", http.StatusMethodNotAllowed, "method_not_allowed", "DELETE, GET, HEAD, POST"},
		{http.MethodGet, "/v1/payments/callback", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
	} {
		var body apiError
		var header http.Header
		if strings.HasPrefix(tt.path, "/v1/admin/") {
			header = s.adminHeader(t)
		}
		resp, raw := callWith(t, tt.method, base+tt.path, header, &body)
		if resp.StatusCode != tt.status || body.Error.Code != tt.code || body.Error.Message == "" ||
			resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d %s Allow %q %s; want %d %s Allow %q", tt.method, tt.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), raw, tt.status, tt.code, tt.allow)
		}
		checkCode(t, tt.method+" "+tt.path, body.Error.Code)
	}
	m, err := s.nc.RequestWithContext(ctxT(t), ordonats.SubjectQueryPrefix+"nope", nil)
	if err != nil {
		t.Fatal(err)
	}
	var body apiError
	if err := json.Unmarshal(m.Data, &body); err != nil || m.Header.Get(ordonats.HeaderStatus) != "404" || body.Error.Code != "not_found" {
		t.Errorf("an unknown query over NATS: %s %s (%v), want 404 not_found in JSON", m.Header.Get(ordonats.HeaderStatus), m.Data, err)
	}
}

// TestQueryParametersChecked: parameters an endpoint does not take, given
// twice or empty are refused naming them, instead of being ignored; a bad
// value is echoed shortened; a min_position that no command reply can
// have carried is refused at once instead of being waited on.
func TestQueryParametersChecked(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		cfg := config(t, t.TempDir())
		cfg.ReadWait = time.Minute // a wait would show as a slow 503, not a 400
		s := start(t, cfg)
		rs := attach(t, s)
		head := must(t)(s.client.PlaceOrder(ctxT(t), placeCmd(uuid.NewString()))).Position
		huge := strings.Repeat("x", 100<<10)
		for _, tt := range []struct{ path, field string }{
			{"/v1/payments?stauts=paid", "stauts"},
			{"/v1/payments?limit=", "limit"},
			{"/v1/refunds?status=", "status"},
			{"/v1/shipments?status=shipped&status=delivered", "status"},
			{"/v1/orders/" + uuid.NewString() + "?min_position=1&verbose=1", "verbose"},
			{"/v1/orders?status=paid", "status"}, // the order list filters by state
			{"/v1/orders?customer=", "customer"},
			{"/v1/stats?min_position=", "min_position"},
			{"/v1/projections?name=orders", "name"},
			{"/v1/payments?status=" + huge, "status"},
			{"/v1/payments?older_than=" + huge, "older_than"},
			{"/v1/payments?limit=" + huge, "limit"},
			{"/v1/orders/" + huge, "id"},
			{"/v1/payments?" + huge + "=1", strings.Repeat("x", 64) + "…"},
			{fmt.Sprintf("/v1/stats?min_position=%d", head+1000), "min_position"},
		} {
			var body apiError
			resp, raw := call(t, http.MethodGet, rs.base+tt.path, &body)
			if resp.StatusCode != http.StatusBadRequest || body.Error.Code != "invalid_command" || body.Error.Field != tt.field || body.Error.Message == "" {
				t.Errorf("GET %.80s: %d %+v, want 400 invalid_command naming %.80s", tt.path, resp.StatusCode, body.Error, tt.field)
			}
			if len(raw) > 1024 {
				t.Errorf("GET %.80s: a %d-byte answer; a bad parameter must not be echoed whole", tt.path, len(raw))
			}
		}
		var body apiError
		resp, _ := call(t, http.MethodGet, fmt.Sprintf("%s/v1/stats?min_position=%d", rs.base, head+1000), &body)
		if !strings.Contains(body.Error.Message, fmt.Sprintf("head %d", head)) {
			t.Errorf("min_position beyond the head: %d %q, want the head %d named", resp.StatusCode, body.Error.Message, head)
		}
	})
}

// TestOrderList: GET /v1/orders pages through the orders newest first, by
// state and customer, over HTTP and NATS, and refuses bad parameters.
func TestOrderList(t *testing.T) {
	forEachReadStore(t, func(t *testing.T, attach attachFunc) {
		s := start(t, config(t, t.TempDir()))
		rs := attach(t, s)
		ctx := ctxT(t)
		var placed []string // oldest first
		var last uint64
		for i := range 5 {
			id := uuid.NewString()
			cmd := placeCmd(id)
			cmd.CustomerID = fmt.Sprint("c-", i%2)
			last = must(t)(s.client.PlaceOrder(ctx, cmd)).Position
			if i < 2 {
				last = must(t)(s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id})).Position
				last = must(t)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "p-" + id[:8], Amount: total})).Position
			}
			placed = append(placed, id)
		}
		type page struct {
			Items      []projections.OrderItem
			NextCursor string `json:"next_cursor"`
		}
		list := func(query string) []string {
			t.Helper()
			var ids []string
			q := query
			for pages := 0; ; pages++ {
				var p page
				resp, raw := call(t, http.MethodGet, rs.base+"/v1/orders?"+q, &p)
				if resp.StatusCode != http.StatusOK || pages > 10 {
					t.Fatalf("GET /v1/orders?%s: %d %s", q, resp.StatusCode, raw)
				}
				for _, it := range p.Items {
					ids = append(ids, it.OrderID)
				}
				if p.NextCursor == "" {
					return ids
				}
				q = query + "&cursor=" + url.QueryEscape(p.NextCursor)
			}
		}
		newestFirst := func(idx ...int) []string {
			var out []string
			for _, i := range slices.Backward(idx) {
				out = append(out, placed[i])
			}
			return out
		}
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{fmt.Sprintf("limit=2&min_position=%d", last), newestFirst(0, 1, 2, 3, 4)},
			{"customer=c-0&limit=1", newestFirst(0, 2, 4)},
			{"state=paid", newestFirst(0, 1)},
			{"state=placed&customer=c-1", newestFirst(3)},
			{"state=paid&older_than=1h", nil},
		} {
			if got := list(tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("GET /v1/orders?%s: %v, want %v", tt.query, got, tt.want)
			}
		}
		var p page
		call(t, http.MethodGet, rs.base+"/v1/orders?limit=1", &p)
		if len(p.Items) != 1 {
			t.Fatalf("one order: %+v", p)
		}
		if o := p.Items[0]; o.OrderID != placed[4] || o.CustomerID != "c-0" || o.State != "placed" || o.Total.Amount != total ||
			o.PaymentStatus != "unpaid" || o.ShippingStatus != "not_shipped" || o.PlacedAt.IsZero() || o.StateSince.IsZero() {
			t.Errorf("the newest order: %+v", o)
		}
		m, err := rs.nc.RequestWithContext(ctx, ordonats.SubjectQueryPrefix+"orders", []byte("state=paid"))
		if err != nil {
			t.Fatal(err)
		}
		var overNATS page
		if err := json.Unmarshal(m.Data, &overNATS); err != nil || m.Header.Get(ordonats.HeaderStatus) != "200" || len(overNATS.Items) != 2 {
			t.Errorf("the order list over NATS: %s %s %v", m.Header.Get(ordonats.HeaderStatus), m.Data, err)
		}
		var payments struct {
			NextCursor string `json:"next_cursor"`
		}
		call(t, http.MethodGet, rs.base+"/v1/payments?limit=1", &payments)
		for _, tt := range []struct{ query, field string }{
			{"state=lost", "state"},
			{"customer=" + strings.Repeat("c", 129), "customer"},
			{"limit=0", "limit"},
			{"older_than=soon", "older_than"},
			{"cursor=" + url.QueryEscape(payments.NextCursor), "cursor"},
			{"payment_status=paid", "payment_status"},
		} {
			var body apiError
			if resp, _ := call(t, http.MethodGet, rs.base+"/v1/orders?"+tt.query, &body); resp.StatusCode != http.StatusBadRequest || body.Error.Field != tt.field {
				t.Errorf("GET /v1/orders?%.40s: %d %+v, want 400 naming %s", tt.query, resp.StatusCode, body.Error, tt.field)
			}
		}
	})
}

// TestAdminRebuildRefusals: the rebuild endpoints refuse what would harm
// the read models — a rebuild from a later position would swap in read
// models without every earlier order — and answer with the codes of the
// one error-code table.
func TestAdminRebuildRefusals(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	base := "http://" + s.svc.HTTPAddr() + "/v1/admin/rebuild"
	id := uuid.NewString()
	pos := must(t)(s.client.PlaceOrder(ctxT(t), placeCmd(id))).Position
	for _, tt := range []struct {
		method, query string
		status        int
		code, field   string
	}{
		{http.MethodPost, "?from=10&restart=true", http.StatusBadRequest, "invalid_command", "from"},
		{http.MethodPost, "?from=1", http.StatusBadRequest, "invalid_command", "from"},
		{http.MethodPost, "?from=-1", http.StatusBadRequest, "invalid_command", "from"},
		{http.MethodPost, "?restart=maybe", http.StatusBadRequest, "invalid_command", "restart"},
		{http.MethodPost, "?frm=0", http.StatusBadRequest, "invalid_command", "frm"},
		{http.MethodGet, "", http.StatusNotFound, "not_found", ""},
		{http.MethodDelete, "", http.StatusNotFound, "not_found", ""},
		{http.MethodGet, "?verbose=1", http.StatusBadRequest, "invalid_command", "verbose"},
	} {
		var body apiError
		resp, raw := callWith(t, tt.method, base+tt.query, s.adminHeader(t), &body)
		if resp.StatusCode != tt.status || body.Error.Code != tt.code || body.Error.Field != tt.field {
			t.Errorf("%s /v1/admin/rebuild%s: %d %s; want %d %s naming %q", tt.method, tt.query, resp.StatusCode, raw, tt.status, tt.code, tt.field)
		}
		checkCode(t, tt.method+" /v1/admin/rebuild"+tt.query, body.Error.Code)
	}
	var o projections.OrderDetails
	if resp, raw := call(t, http.MethodGet, fmt.Sprintf("http://%s/v1/orders/%s?min_position=%d", s.svc.HTTPAddr(), id, pos), &o); resp.StatusCode != http.StatusOK {
		t.Fatalf("the order after the refused rebuilds: %d %s", resp.StatusCode, raw)
	}

	// A rebuild from the start is accepted and swaps in every order.
	var p projections.RebuildProgress
	if resp, raw := callWith(t, http.MethodPost, base, s.adminHeader(t), &p); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/admin/rebuild: %d %s", resp.StatusCode, raw)
	}
	eventually.True(t, 30*time.Second, "the rebuild to finish", func() bool {
		callWith(t, http.MethodGet, base, s.adminHeader(t), &p)
		return !p.Running
	})
	if !p.Done {
		t.Fatalf("the rebuild failed: %+v", p)
	}
	if resp, raw := call(t, http.MethodGet, fmt.Sprintf("http://%s/v1/orders/%s", s.svc.HTTPAddr(), id), &o); resp.StatusCode != http.StatusOK {
		t.Fatalf("the order after the rebuild: %d %s", resp.StatusCode, raw)
	}
}
