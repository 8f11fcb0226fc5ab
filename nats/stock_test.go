package nats

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// fakeStock answers Submit from its own goroutine, as a lane does, and
// records what it was asked.
type fakeStock struct {
	mu   sync.Mutex
	reqs []commands.StockRequest
}

func (f *fakeStock) Submit(req commands.StockRequest, done func(commands.StockResult)) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if err := req.Command.Validate(); err != nil {
		done(commands.StockResult{CommandID: req.CommandID, Err: err})
		return
	}
	go done(commands.StockResult{CommandID: req.CommandID, Events: []string{domain.EvtInventoryReserved}, Position: 7,
		Stock: domain.StockView{SKU: req.Command.StockSKU(), OnHand: 5, Reserved: 1, Available: 4, Revision: 3}})
}

func (f *fakeStock) Get(_ context.Context, sku string) (domain.StockView, error) {
	if sku == "broken" {
		return domain.StockView{}, errors.New("store down")
	}
	return domain.StockView{SKU: sku, OnHand: 5, Available: 5}, nil
}

// TestServeStock drives the stock API over NATS: replies carry the result
// and the status header, refusals a stable code, and a body in any JSON
// layout reaches the handler as the same command.
func TestServeStock(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	h := &fakeStock{}
	sub, err := ServeStock(nc, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, err := NewClient(nc, ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	order, cmd := uuid.NewString(), uuid.NewString()
	r, err := c.ReserveStock(ctx, "sku-1", order, 1, cmd)
	if err != nil || r.CommandID != cmd || r.Position != 7 || r.Available != 4 || len(r.Events) != 1 {
		t.Fatalf("reserve: %+v, %v", r, err)
	}
	// A body written by another client: spaces and another field order.
	m, err := nc.Request(SubjectStockPrefix+"sku-1.reserve", []byte(` { "quantity": 1, "order_id": "`+order+`", "command_id": "`+cmd+`" }`), 5*time.Second)
	if err != nil || m.Header.Get(HeaderStatus) != "200" {
		t.Fatalf("reserve with a spaced body: %v, status %q", err, m.Header.Get(HeaderStatus))
	}
	h.mu.Lock()
	if len(h.reqs) != 2 || h.reqs[0] != h.reqs[1] || h.reqs[0].Command != (domain.ReserveStock{SKU: "sku-1", OrderID: order, Quantity: 1}) {
		t.Fatalf("handler got %+v, want the same reservation twice", h.reqs)
	}
	h.mu.Unlock()
	if _, err := c.ReserveStock(ctx, "sku-1", "not-a-uuid", 1, ""); !errors.Is(err, domain.ErrInvalidCommand) {
		t.Fatalf("reserve for a bad order: %v, want invalid_command", err)
	}
	for _, tc := range []struct{ subject, body, code string }{
		{SubjectStockPrefix + "sku-1.reserve", `{"command_id":"c","bogus":1}`, "invalid_command"},
		{SubjectStockPrefix + "sku-1.reserve", `{"order_id":"` + order + `","quantity":1}`, "invalid_command"},
		{SubjectStockPrefix + "sku-1.explode", `{}`, "unknown_command"},
		{SubjectStockPrefix + "nodot", `{}`, "unknown_command"},
		{SubjectStockPrefix + "broken.get", ``, "unavailable"},
	} {
		m, err := nc.Request(tc.subject, []byte(tc.body), 5*time.Second)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.subject, tc.body, err)
		}
		var reply StockReply
		if err := unmarshalStockReply(m.Data, &reply); err != nil || reply.Error == nil || reply.Error.Code != tc.code || m.Header.Get(HeaderStatus) == "200" {
			t.Fatalf("%s %s: reply %s (%v), status %q; want code %s", tc.subject, tc.body, m.Data, err, m.Header.Get(HeaderStatus), tc.code)
		}
	}
	if v, err := c.GetStock(ctx, "sku-1"); err != nil || v.OnHand != 5 {
		t.Fatalf("get: %+v, %v", v, err)
	}
}

// TestServeStockErrorReplies: a refused request gets the error alone (no
// zeroed stock fields that read as an empty SKU), in the request's own
// terms (no Go decoder text), an oversized body is payload_too_large, and
// an upper-case order ID reaches the handler in its canonical form.
func TestServeStockErrorReplies(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	h := &fakeStock{}
	sub, err := ServeStock(nc, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	order := uuid.NewString()
	big := `{"command_id":"c","order_id":"` + order + `","quantity":1,"pad":"` + strings.Repeat("x", 70_000) + `"}`
	for _, tc := range []struct {
		name, body, code, field, status string
	}{
		{"70 KB body", big, "payload_too_large", "", "413"},
		{"quantity of the wrong type", `{"command_id":"c","order_id":"` + order + `","quantity":"two"}`, "invalid_command", "quantity", "400"},
		{"quantity with a fraction", `{"command_id":"c","order_id":"` + order + `","quantity":1.5}`, "invalid_command", "quantity", "400"},
		{"order ID of the wrong type", `{"command_id":"c","order_id":7,"quantity":1}`, "invalid_command", "order_id", "400"},
		{"unknown field", `{"command_id":"c","order_id":"` + order + `","quantity":1,"qty":1}`, "invalid_command", "qty", "400"},
		{"not JSON", `{"command_id":`, "invalid_command", "", "400"},
		{"array", `[1,2]`, "invalid_command", "", "400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := nc.Request(SubjectStockPrefix+"sku-1.reserve", []byte(tc.body), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(m.Data, &raw); err != nil {
				t.Fatalf("reply %s: %v", m.Data, err)
			}
			if len(raw) != 1 || raw["error"] == nil {
				t.Fatalf("reply %s, want only an error", m.Data)
			}
			var body struct{ Error ErrorBody }
			_ = json.Unmarshal(m.Data, &body)
			e := body.Error
			if e.Code != tc.code || e.Field != tc.field || m.Header.Get(HeaderStatus) != tc.status {
				t.Fatalf("reply %s, status %s; want code %s, field %q, status %s", m.Data, m.Header.Get(HeaderStatus), tc.code, tc.field, tc.status)
			}
			for _, leak := range []string{"json:", "Go ", "struct", "int64", "unmarshal"} {
				if strings.Contains(e.Message, leak) {
					t.Fatalf("message %q shows decoder text %q", e.Message, leak)
				}
			}
		})
	}
	upper := strings.ToUpper(order)
	m, err := nc.Request(SubjectStockPrefix+"sku-1.reserve", []byte(`{"command_id":"u","order_id":"`+upper+`","quantity":1}`), 5*time.Second)
	if err != nil || m.Header.Get(HeaderStatus) != "200" {
		t.Fatalf("reserve for an upper-case order ID: %v, %s", err, m.Data)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := h.reqs[len(h.reqs)-1].Command; got != (domain.ReserveStock{SKU: "sku-1", OrderID: order, Quantity: 1}) {
		t.Fatalf("handler got %+v, want the order's canonical ID %s", got, order)
	}
}

// TestStockRequestWaitsForAResponder: between one holder of the stock API
// and the next, NATS answers a request with "no responders" at once; the
// client sends it again until an instance serves the API, within the
// request's time, and says plainly when none came.
func TestStockRequestWaitsForAResponder(t *testing.T) {
	nc := connect(t, startServer(t, t.TempDir()))
	h := &fakeStock{}
	c, err := NewClient(nc, ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	served := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() {
		_, err := ServeStock(nc, h, nil) // unsubscribed when the connection closes
		served <- err
	})
	start := time.Now()
	for _, ctx := range []context.Context{context.Background(), ctxWithDeadline(t, 5*time.Second)} {
		if _, err := c.AddStock(ctx, "sku-1", 3, uuid.NewString()); err != nil {
			t.Fatalf("add stock while the API's holder changes: %v", err)
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("answered after %s, before any instance served the stock API", waited)
	}

	alone, err := NewClient(connect(t, startServer(t, t.TempDir())), ClientOptions{Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	_, err = alone.AddStock(context.Background(), "sku-1", 3, uuid.NewString())
	if err == nil || !strings.Contains(err.Error(), "no ordo serve instance took the request") {
		t.Fatalf("no instance at all: got %v, want an error that says so", err)
	}
}

func ctxWithDeadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
