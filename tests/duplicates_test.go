package tests

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// streamEvents reads an order's stream straight from the event store.
func streamEvents(tb testing.TB, s *system, orderID string) []eventstore.RecordedEvent {
	tb.Helper()
	store, err := eventstore.Connect(ctxT(tb), s.svc.ESDBURL())
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	var out []eventstore.RecordedEvent
	err = store.ReadStream(ctxT(tb), "order-"+orderID, 0, func(e eventstore.RecordedEvent) error { out = append(out, e); return nil })
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		tb.Fatal(err)
	}
	return out
}

// sameOutcome compares outcomes ignoring the duplicate flag.
func sameOutcome(a, b ordonats.Outcome) bool {
	a.Duplicate, b.Duplicate = false, false
	if len(a.Events) == 0 && len(b.Events) == 0 {
		a.Events, b.Events = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func TestDuplicateCommandIDs(t *testing.T) {
	dir := t.TempDir()
	s := start(t, config(t, dir))
	ctx := ctxT(t)
	id := uuid.NewString()
	place := placeCmd(id)

	// Twice concurrently.
	var wg sync.WaitGroup
	outs := make([]ordonats.Outcome, 8)
	errs := make([]error, 8)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = s.client.PlaceOrder(ctx, place, ordonats.WithCommandID("place-"+id))
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil || !sameOutcome(outs[i], outs[0]) {
			t.Fatalf("concurrent duplicate %d: %+v %v; first %+v", i, outs[i], errs[i], outs[0])
		}
	}
	// Twice in sequence, for a command that produces events.
	must(t)(s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id}))
	pay := domain.ConfirmPayment{Order: id, PaymentID: "p-1", Amount: total}
	first := must(t)(s.client.ConfirmPayment(ctx, pay, ordonats.WithCommandID("pay-"+id)))
	again := must(t)(s.client.ConfirmPayment(ctx, pay, ordonats.WithCommandID("pay-"+id)))
	if !sameOutcome(first, again) {
		t.Fatalf("sequential duplicate: %+v then %+v", first, again)
	}
	// After a restart of the whole service on the same data.
	s.stop(t)
	s2 := start(t, config(t, dir))
	afterRestart := must(t)(s2.client.ConfirmPayment(ctx, pay, ordonats.WithCommandID("pay-"+id)))
	if !sameOutcome(first, afterRestart) {
		t.Fatalf("duplicate after restart: %+v, first %+v", afterRestart, first)
	}
	evs := streamEvents(t, s2, id)
	if len(evs) != 3 {
		t.Fatalf("the order's stream has %d events, want 3 (placed, reserved, paid)", len(evs))
	}
}

// TestConcurrentConflictingCommands fires 200 commands at one order at once.
// Every command gets exactly one answer, and the stream is a legal history.
func TestConcurrentConflictingCommands(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	id := paidOrder(t, s)
	cmds := make([]domain.Command, 200)
	for i := range cmds {
		switch i % 5 {
		case 0:
			cmds[i] = domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: fmt.Sprint(i)}
		case 1:
			cmds[i] = domain.CancelOrder{Order: id, Reason: fmt.Sprint("reason ", i)}
		case 2:
			cmds[i] = domain.RequestRefund{Order: id, RefundID: fmt.Sprint("r-", i), Amount: 100, Reason: "x"}
		case 3:
			cmds[i] = domain.ConfirmDelivery{Order: id}
		default:
			cmds[i] = domain.ConfirmPayment{Order: id, PaymentID: fmt.Sprint("extra-", i), Amount: 10}
		}
	}
	type answer struct {
		out ordonats.Outcome
		err error
	}
	answers := make([]answer, len(cmds))
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.client.SendCommand(ctx, c, ordonats.WithCommandID(fmt.Sprintf("c-%d-%s", i, id)))
			answers[i] = answer{out, err}
		}()
	}
	wg.Wait()
	applied := 0
	for i, a := range answers {
		var ce *ordonats.CommandError
		switch {
		case a.err == nil:
			applied++
		case errors.As(a.err, &ce):
		default:
			t.Fatalf("command %d got no answer: %v", i, a.err)
		}
	}
	if applied == 0 {
		t.Fatal("no command was applied")
	}
	// The history folds through the domain: every transition was legal.
	order := domain.NewOrder(id)
	for _, e := range streamEvents(t, s, id) {
		ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		if err := order.Apply(ev); err != nil {
			t.Fatalf("illegal history at revision %d: %v", e.Revision, err)
		}
	}
	t.Logf("%d of %d commands applied; order ends %s at revision %d", applied, len(cmds), order.State(), order.Revision())
}

// TestDuplicateAfterDedupeWindow resends a command after JetStream's dedupe
// window has passed: the stream accepts the message again, and the order's
// own record of applied command IDs turns it into the first outcome.
func TestDuplicateAfterDedupeWindow(t *testing.T) {
	cfg := config(t, t.TempDir())
	cfg.Commands.DedupeWindow = 100 * time.Millisecond
	s := start(t, cfg)
	ctx := ctxT(t)
	id := uuid.NewString()
	first := must(t)(s.client.PlaceOrder(ctx, placeCmd(id), ordonats.WithCommandID("late-"+id)))
	time.Sleep(300 * time.Millisecond) // past the dedupe window, on purpose
	again := must(t)(s.client.PlaceOrder(ctx, placeCmd(id), ordonats.WithCommandID("late-"+id)))
	if !again.Duplicate || !sameOutcome(first, again) {
		t.Fatalf("resend after the dedupe window: %+v, first %+v", again, first)
	}
	// The stream took the resend as a new message, so the answer came from
	// the aggregate, not from JetStream's dedupe.
	js, _ := jetstream.New(s.nc)
	st, err := js.Stream(ctx, ordonats.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Fatalf("the command stream holds %v messages (%v), want 2: the resend was deduplicated by JetStream", info.State.Msgs, err)
	}
	if evs := streamEvents(t, s, id); len(evs) != 1 {
		t.Fatalf("the order has %d events, want 1", len(evs))
	}
}
