package tests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// tracedSystem is a service and a client recording their spans in memory.
type tracedSystem struct {
	*system
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	client *ordonats.Client // traced
}

func startTraced(t *testing.T, cfg serve.Config) tracedSystem {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg.TracerProvider = tp
	s := start(t, cfg)
	c, err := ordonats.NewClient(s.nc, ordonats.ClientOptions{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return tracedSystem{system: s, spans: spans, tp: tp, client: c}
}

// spanTree is the spans recorded so far, by span ID too.
type spanTree struct {
	byID  map[trace.SpanID]tracetest.SpanStub
	spans []tracetest.SpanStub
}

func (st spanTree) named(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range st.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// child is the span named name whose parent is parent; it fails the test
// when there is none.
func (st spanTree) child(t *testing.T, parent tracetest.SpanStub, name string) tracetest.SpanStub {
	t.Helper()
	for _, s := range st.named(name) {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() {
			if s.SpanContext.TraceID() != parent.SpanContext.TraceID() {
				t.Fatalf("span %q is in trace %s, its parent %q in %s", name, s.SpanContext.TraceID(), parent.Name, parent.SpanContext.TraceID())
			}
			return s
		}
	}
	t.Fatalf("no span %q under %q; the spans:\n%s", name, parent.Name, st)
	return tracetest.SpanStub{}
}

func (st spanTree) String() string {
	var lines []string
	for _, s := range st.spans {
		p := "(root)"
		if ps, ok := st.byID[s.Parent.SpanID()]; ok {
			p = ps.Name
		}
		lines = append(lines, fmt.Sprintf("  %s  <-  %s", s.Name, p))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// awaitSpans waits until the spans named are all recorded and returns the tree.
func (ts tracedSystem) awaitSpans(t *testing.T, names ...string) spanTree {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := spanTree{byID: map[trace.SpanID]tracetest.SpanStub{}, spans: ts.spans.GetSpans()}
		for _, s := range st.spans {
			st.byID[s.SpanContext.SpanID()] = s
		}
		missing := ""
		for _, n := range names {
			if len(st.named(n)) == 0 {
				missing = n
				break
			}
		}
		if missing == "" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span %q was recorded; the spans:\n%s", missing, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTracePlacedAndPaidOrder: the trace of an order placed and paid under
// one client span runs from each send through the workers, the command's
// execution and its event store append, to the reply; and on through the
// events' metadata into the saga's steps, the stock reservation, the
// payment timer's scheduling and cancellation, and the read models.
func TestTracePlacedAndPaidOrder(t *testing.T) {
	ts := startTraced(t, sagaConfig(t, t.TempDir(), time.Hour))
	ctx := ctxT(t)
	if _, err := ts.system.client.AddStock(ctx, "traced", 10, ""); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	tctx, root := ts.tp.Tracer("test").Start(ctx, "customer checkout")
	must(t)(ts.client.PlaceOrder(tctx, oneLine(id, "traced", 2)))
	settle(t, ctx, ts.client, []string{id})
	must(t)(ts.client.ConfirmPayment(tctx, domain.ConfirmPayment{Order: id, PaymentID: "p-" + id[:8], Amount: 200}))
	root.End()

	// A consumer's "process" span ends after its reply, so it may be
	// recorded after the spans below it: wait for both.
	st := ts.awaitSpans(t, "customer checkout", "process PlaceOrder", "process ConfirmPayment", "saga PaymentSucceeded", "project PaymentSucceeded")
	top := st.named("customer checkout")[0]
	send := st.child(t, top, "send PlaceOrder")
	if send.SpanKind != trace.SpanKindProducer {
		t.Errorf("send PlaceOrder is a %v span, want producer", send.SpanKind)
	}
	process := st.child(t, send, "process PlaceOrder")
	if process.SpanKind != trace.SpanKindConsumer {
		t.Errorf("process PlaceOrder is a %v span, want consumer", process.SpanKind)
	}
	execute := st.child(t, process, "execute PlaceOrder")
	st.child(t, execute, "eventstore append")
	st.child(t, process, "reply")

	placed := st.child(t, execute, "saga OrderPlaced")
	st.child(t, placed, "stock ReserveStock")
	reserved := st.child(t, placed, "execute MarkStockReserved")
	timer := st.child(t, reserved, "saga StockReserved") // schedules the payment timer

	pay := st.child(t, st.child(t, st.child(t, top, "send ConfirmPayment"), "process ConfirmPayment"), "execute ConfirmPayment")
	st.child(t, pay, "saga PaymentSucceeded") // cancels the payment timer
	_ = timer

	// The read models applied the events in their traces.
	st.child(t, execute, "project OrderPlaced")
	st.child(t, reserved, "project StockReserved")
	st.child(t, pay, "project PaymentSucceeded")

	// Every event of the order carries its trace, in the trace of the checkout.
	store := connectStore(t, ts.svc.ESDBURL())
	n := 0
	err := store.ReadStream(ctx, "order-"+id, 0, func(e eventstore.RecordedEvent) error {
		ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
		if err != nil {
			return err
		}
		n++
		if !strings.Contains(ev.Meta.TraceParent, top.SpanContext.TraceID().String()) {
			t.Errorf("event %s has traceparent %q, want one in trace %s", e.Type, ev.Meta.TraceParent, top.SpanContext.TraceID())
		}
		return nil
	})
	if err != nil || n < 3 {
		t.Fatalf("read the order's stream: %d events, %v", n, err)
	}
}

// TestTraceThroughPaymentTimer: an order left unpaid is cancelled by its
// payment timer, and the ExpirePayment the timer fires continues the trace
// of the saga step that scheduled it.
func TestTraceThroughPaymentTimer(t *testing.T) {
	ts := startTraced(t, sagaConfig(t, t.TempDir(), time.Second))
	ctx := ctxT(t)
	if _, err := ts.system.client.AddStock(ctx, "timed", 10, ""); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	tctx, root := ts.tp.Tracer("test").Start(ctx, "abandoned checkout")
	must(t)(ts.client.PlaceOrder(tctx, oneLine(id, "timed", 1)))
	root.End()

	st := ts.awaitSpans(t, "saga OrderCancelled")
	top := st.named("abandoned checkout")[0]
	execute := st.child(t, st.child(t, st.child(t, top, "send PlaceOrder"), "process PlaceOrder"), "execute PlaceOrder")
	scheduled := st.child(t, st.child(t, st.child(t, execute, "saga OrderPlaced"), "execute MarkStockReserved"), "saga StockReserved")
	expired := st.child(t, st.child(t, scheduled, "process ExpirePayment"), "execute ExpirePayment")
	cancelled := st.child(t, expired, "saga OrderCancelled")
	st.child(t, cancelled, "stock ReleaseStock")

	// A timer that fired is no longer pending.
	url := "http://" + ts.svc.HTTPAddr() + "/metrics"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n, found := value(scrape(t, url)["ordo_payment_timers_pending"], nil)
		if found && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ordo_payment_timers_pending = %v (found: %t) after the timer fired, want 0", n, found)
		}
	}
}
