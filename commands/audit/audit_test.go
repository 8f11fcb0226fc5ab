package audit_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

// history is an embedded store the tests write streams to, one event at a
// time, so positions follow the calls.
type history struct {
	tb    testing.TB
	ctx   context.Context
	store *eventstore.Store
	codec *domain.Codec
}

func newHistory(tb testing.TB) *history {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(tb.TempDir(), "eventstore")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return &history{tb: tb, ctx: ctx, store: store, codec: domain.NewCodec()}
}

// add appends one event of d to stream, recorded by command commandID.
func (h *history) add(stream, commandID string, d domain.EventData) {
	h.tb.Helper()
	typ, data, meta, err := h.codec.Encode(domain.Event{Type: d.EventType(), Version: 1, Data: d,
		Meta: domain.EventMeta{CommandID: commandID, CorrelationID: "corr-" + commandID}})
	if err != nil {
		h.tb.Fatal(err)
	}
	h.raw(stream, typ, data, meta)
}

// raw appends one event as given, whether the domain can read it or not.
func (h *history) raw(stream, typ string, data, meta []byte) {
	h.tb.Helper()
	if _, err := h.store.Append(h.ctx, stream, eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: meta}); err != nil {
		h.tb.Fatal(err)
	}
}

// placed appends the OrderPlaced of a new order of qty units of sku and
// returns its ID.
func (h *history) placed(sku string, qty int64) string {
	h.tb.Helper()
	id := uuid.NewString()
	h.add(commands.StreamName(id), "place-"+id, domain.OrderPlaced{OrderID: id, CustomerID: "c",
		Lines: []domain.Line{{SKU: sku, Quantity: qty, UnitPrice: 100}}, Total: domain.Money{Amount: 100 * qty, Currency: "EUR"}})
	return id
}

func (h *history) source() serve.AuditStore { return serve.AuditStore{Store: h.store} }

func (h *history) verify(opts audit.Options) audit.Report {
	h.tb.Helper()
	head, err := h.store.Head(h.ctx)
	if err != nil {
		h.tb.Fatal(err)
	}
	opts.Head = head
	rep, err := audit.Verify(h.ctx, h.source(), opts)
	if err != nil {
		h.tb.Fatal(err)
	}
	return rep
}

func TestTimeline(t *testing.T) {
	h := newHistory(t)
	id := h.placed("sku-1", 2)
	stream := commands.StreamName(id)
	h.add(stream, "reserve-"+id, domain.StockReserved{})
	h.add(stream, "deliver-"+id, domain.OrderDelivered{}) // not shipped: the lifecycle refuses it
	h.raw(stream, domain.EvtOrderShipped, []byte("{not json"), nil)
	h.add(stream, "cancel-"+id, domain.OrderCancelled{Reason: "changed my mind"})

	// Any case of the ID names the order.
	steps, err := audit.Timeline(h.ctx, h.source(), strings.ToUpper(id))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ     string
		state   domain.State
		problem string
	}{
		{domain.EvtOrderPlaced, domain.StatePlaced, ""},
		{domain.EvtStockReserved, domain.StateAwaitingPayment, ""},
		{domain.EvtOrderDelivered, domain.StateAwaitingPayment, "illegal: "},
		{domain.EvtOrderShipped, domain.StateAwaitingPayment, "undecodable: "},
		{domain.EvtOrderCancelled, domain.StateCancelled, ""},
	}
	if len(steps) != len(want) {
		t.Fatalf("got %d steps, want %d: %+v", len(steps), len(want), steps)
	}
	for i, w := range want {
		s := steps[i]
		if s.Revision != uint64(i) || s.Type != w.typ || s.State != w.state || !strings.HasPrefix(s.Problem, w.problem) || (w.problem == "") != (s.Problem == "") {
			t.Errorf("step %d: got revision %d, %s, state %s, problem %q; want revision %d, %s, state %s, problem %q…",
				i, s.Revision, s.Type, s.State, s.Problem, i, w.typ, w.state, w.problem)
		}
		if w.problem == "" && (s.CommandID == "" || s.CorrelationID != "corr-"+s.CommandID || s.Time.IsZero()) {
			t.Errorf("step %d: got command %q, correlation %q, time %v; want both IDs and a time", i, s.CommandID, s.CorrelationID, s.Time)
		}
	}
	if string(steps[3].Data) != `"{not json"` {
		t.Errorf("undecodable step's data: got %s, want the raw bytes as a JSON string", steps[3].Data)
	}
}

func TestReplayStops(t *testing.T) {
	h := newHistory(t)
	id := h.placed("sku-1", 1)
	h.add(commands.StreamName(id), "reserve-"+id, domain.StockReserved{})
	h.add(commands.StreamName(id), "cancel-"+id, domain.OrderCancelled{Reason: "fraud check"})

	var seen []uint64
	order, err := audit.Replay(h.ctx, h.source(), id, func(s audit.Step) bool { return s.Revision > 1 }, func(s audit.Step) { seen = append(seen, s.Revision) })
	if err != nil {
		t.Fatal(err)
	}
	if order.State() != domain.StateAwaitingPayment || len(seen) != 2 {
		t.Errorf("stopped after revision 1: got state %s after revisions %v, want %s after [0 1]", order.State(), seen, domain.StateAwaitingPayment)
	}

	unknown := uuid.NewString()
	_, err = audit.Replay(h.ctx, h.source(), unknown, nil, nil)
	if err == nil || !strings.Contains(err.Error(), unknown+" has no events") {
		t.Errorf("an order with no events: got %v, want an error that says it has none", err)
	}
}

func TestVerify(t *testing.T) {
	h := newHistory(t)
	sound := h.placed("stocked", 2)
	h.add(domain.StockStream("stocked"), "add-1", domain.InventoryAdded{SKU: "stocked", Quantity: 10})
	h.add(domain.StockStream("stocked"), "r-"+sound, domain.InventoryReserved{SKU: "stocked", OrderID: sound, Quantity: 2})
	h.add(commands.StreamName(sound), commands.SagaStockReservedID(sound), domain.StockReserved{})

	illegal := h.placed("stocked", 1)
	h.add(commands.StreamName(illegal), "ship-"+illegal, domain.OrderShipped{Carrier: "dhl", TrackingNumber: "T1"})

	garbled := h.placed("stocked", 1)
	h.raw(commands.StreamName(garbled), domain.EvtStockReserved, []byte("{"), nil)

	oversold := "scarce"
	h.add(domain.StockStream(oversold), "add-2", domain.InventoryAdded{SKU: oversold, Quantity: 1})
	h.add(domain.StockStream(oversold), "r-x", domain.InventoryReserved{SKU: oversold, OrderID: uuid.NewString(), Quantity: 5})

	unbacked := h.placed("stocked", 3) // marked reserved by the saga, with nothing reserved
	h.add(commands.StreamName(unbacked), commands.SagaStockReservedID(unbacked), domain.StockReserved{})

	h.add("customer-1", "other", domain.OrderDelivered{}) // a stream verify has no model for

	rep := h.verify(audit.Options{})
	got := map[string]audit.Violation{}
	for _, v := range rep.Violations {
		got[v.Stream] = v
	}
	want := map[string]string{ // stream → type of the event flagged
		commands.StreamName(illegal):  domain.EvtOrderShipped,
		commands.StreamName(garbled):  domain.EvtStockReserved,
		domain.StockStream(oversold):  domain.EvtInventoryReserved,
		commands.StreamName(unbacked): domain.EvtStockReserved,
	}
	if len(rep.Violations) != len(want) {
		t.Errorf("got %d violations, want %d: %+v", len(rep.Violations), len(want), rep.Violations)
	}
	for stream, typ := range want {
		if v, ok := got[stream]; !ok || v.Type != typ || v.Reason == "" {
			t.Errorf("%s: got %+v, want a violation on its %s with a reason", stream, v, typ)
		}
	}
	if !strings.Contains(got[commands.StreamName(unbacked)].Reason, "without a reservation") {
		t.Errorf("unbacked order: got %q, want the cross-stream check to say it had no reservation", got[commands.StreamName(unbacked)].Reason)
	}
	if rep.Streams != 4 || rep.SKUs != 2 || rep.Skipped != 1 || rep.Events != 13 || !rep.CrossChecked {
		t.Errorf("got %d order streams, %d stock streams, %d skipped of %d events, cross-checked %v; want 4, 2, 1 of 13, true",
			rep.Streams, rep.SKUs, rep.Skipped, rep.Events, rep.CrossChecked)
	}

	// A prefix reads only its streams and leaves the cross-stream check out.
	rep = h.verify(audit.Options{Prefixes: []string{commands.StreamName(unbacked)}})
	if rep.Streams != 1 || len(rep.Violations) != 0 || rep.CrossChecked {
		t.Errorf("with a prefix: got %d streams, violations %+v, cross-checked %v; want 1 stream, none, false", rep.Streams, rep.Violations, rep.CrossChecked)
	}
}

// TestVerifyScope: an order marked reserved by a client, for a SKU Ordo
// never stocked, is another system's stock unless the scope says every
// order's stock is Ordo's.
func TestVerifyScope(t *testing.T) {
	h := newHistory(t)
	id := h.placed("elsewhere", 1)
	h.add(commands.StreamName(id), "client-"+id, domain.StockReserved{})
	for _, tc := range []struct {
		scope audit.Scope
		want  int
	}{{"", 0}, {audit.ScopeAuto, 0}, {audit.ScopeOrdo, 1}} {
		if rep := h.verify(audit.Options{Scope: tc.scope}); len(rep.Violations) != tc.want {
			t.Errorf("scope %q: got violations %+v, want %d", tc.scope, rep.Violations, tc.want)
		}
	}
}

// TestVerifierGap: a stream whose revisions skip one is missing events,
// which only the verifier itself can be shown (a store numbers a stream's
// events without gaps).
func TestVerifierGap(t *testing.T) {
	codec := domain.NewCodec()
	id := uuid.NewString()
	ev := func(rev uint64, d domain.EventData) audit.Event {
		typ, data, meta, err := codec.Encode(domain.Event{Type: d.EventType(), Version: 1, Data: d, Meta: domain.EventMeta{CommandID: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		return audit.Event{Stream: commands.StreamName(id), Revision: rev, Position: rev, Type: typ, Data: data, Metadata: meta}
	}
	v := audit.NewVerifier()
	v.Add(ev(0, domain.OrderPlaced{OrderID: id, CustomerID: "c", Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 5}}, Total: domain.Money{Amount: 5, Currency: "EUR"}}))
	v.Add(ev(2, domain.StockReserved{}))
	rep := v.Report()
	if len(rep.Violations) != 1 || rep.Violations[0].Revision != 2 || !strings.Contains(rep.Violations[0].Reason, "revision 2 follows 0") {
		t.Errorf("got %+v, want one violation at revision 2 saying it follows 0", rep.Violations)
	}
}
