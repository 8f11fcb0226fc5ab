package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// shippedOrder is a paid order that has shipped: delivering it is legal.
func shippedOrder(tb testing.TB, s *system) string {
	tb.Helper()
	id := paidOrder(tb, s)
	must(tb)(s.client.ShipOrder(ctxT(tb), domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "T-" + id[:8]}))
	return id
}

// sendRaw sends a command the way any NATS client does, with a message ID
// of its own, and returns the reply with its Ordo-Status.
func sendRaw(tb testing.TB, s *system, orderID, commandType, commandID, body string) (ordonats.Outcome, string) {
	tb.Helper()
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		tb.Fatal(err)
	}
	defer sub.Unsubscribe()
	js, _ := jetstream.New(s.nc)
	m := natsgo.NewMsg(ordonats.CommandSubject(orderID, commandType))
	m.Data = []byte(body)
	m.Header.Set(ordonats.HeaderMsgID, uuid.NewString())
	m.Header.Set(ordonats.HeaderCommandID, commandID)
	m.Header.Set(ordonats.HeaderReplyTo, inbox)
	if _, err := js.PublishMsg(ctxT(tb), m); err != nil {
		tb.Fatal(err)
	}
	reply, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		tb.Fatalf("no reply to %s %s: %v", commandType, commandID, err)
	}
	var out ordonats.Outcome
	if err := json.Unmarshal(reply.Data, &out); err != nil {
		tb.Fatalf("reply %s: %v", reply.Data, err)
	}
	return out, reply.Header.Get(ordonats.HeaderStatus)
}

// TestReusedCommandIDIsRefused: a command ID names one command. Sent again
// with another order, type or body it is refused with command_id_reused
// (and nothing changes); only the same command, however its JSON is
// spelled, is a duplicate that gets the first outcome. The order keeps the
// command's fingerprint in its events, so this holds within an order even
// once the outcome bucket has forgotten the ID.
func TestReusedCommandIDIsRefused(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	a := awaitingOrder(t, s)
	b := shippedOrder(t, s)
	payID := "pay-" + uuid.NewString()
	pay := domain.ConfirmPayment{Order: a, PaymentID: "pi-a", Amount: total}
	first := must(t)(s.client.ConfirmPayment(ctx, pay, ordonats.WithCommandID(payID)))
	eventsA, eventsB := len(streamEvents(t, s, a)), len(streamEvents(t, s, b))

	refused := func(t *testing.T, out ordonats.Outcome, err error) {
		t.Helper()
		var ce *ordonats.CommandError
		if !errors.Is(err, domain.ErrCommandIDReused) || !errors.As(err, &ce) || ce.Field != "command_id" {
			t.Fatalf("got %+v, %v; want command_id_reused on field command_id", out, err)
		}
		if len(out.Events) != 0 || out.Duplicate {
			t.Fatalf("a refused command reports events %v, duplicate %v", out.Events, out.Duplicate)
		}
	}
	reuses := []struct {
		name string
		send func() (ordonats.Outcome, error)
	}{
		{"another order", func() (ordonats.Outcome, error) {
			return s.client.ConfirmDelivery(ctx, domain.ConfirmDelivery{Order: b}, ordonats.WithCommandID(payID))
		}},
		{"another type", func() (ordonats.Outcome, error) {
			return s.client.CancelOrder(ctx, domain.CancelOrder{Order: a, Reason: "changed my mind"}, ordonats.WithCommandID(payID))
		}},
		{"other content", func() (ordonats.Outcome, error) {
			return s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: a, PaymentID: "pi-other", Amount: total}, ordonats.WithCommandID(payID))
		}},
	}
	identical := func(t *testing.T) {
		t.Helper()
		// The same command with its JSON spelled differently.
		body := fmt.Sprintf(`{ "amount": %d, "payment_id": "pi-a", "order_id": %q }`, total, a)
		again, err := s.client.Send(ctx, ordonats.Command{ID: payID, Type: domain.CmdConfirmPayment, OrderID: a, Body: []byte(body)})
		if err != nil || !again.Duplicate || !sameOutcome(first, again) {
			t.Fatalf("the same command again: %+v, %v; want the first outcome %+v as a duplicate", again, err, first)
		}
	}
	unchanged := func(t *testing.T) {
		t.Helper()
		if n := len(streamEvents(t, s, a)); n != eventsA {
			t.Fatalf("order A has %d events, want %d: a refused command changed it", n, eventsA)
		}
		if n := len(streamEvents(t, s, b)); n != eventsB {
			t.Fatalf("order B has %d events, want %d: a refused command changed it", n, eventsB)
		}
	}

	for _, r := range reuses {
		t.Run(r.name, func(t *testing.T) {
			out, err := r.send()
			refused(t, out, err)
			unchanged(t)
		})
	}
	t.Run("identical", identical)
	t.Run("any NATS client", func(t *testing.T) {
		out, status := sendRaw(t, s, b, domain.CmdConfirmDelivery, payID, fmt.Sprintf(`{"order_id":%q}`, b))
		if status != "409" || out.Error == nil || out.Error.Code != string(domain.CodeCommandIDReused) {
			t.Fatalf("reply %+v with status %s, want 409 command_id_reused", out, status)
		}
		unchanged(t)
	})

	// The outcome bucket forgets the ID (its records expire): within the
	// order, the fingerprint in the events still tells.
	js, _ := jetstream.New(s.nc)
	kv, err := js.KeyValue(ctx, ordonats.BucketOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, payID); err != nil {
		t.Fatal(err)
	}
	for _, r := range reuses[1:] {
		t.Run("forgotten/"+r.name, func(t *testing.T) {
			out, err := r.send()
			refused(t, out, err)
			unchanged(t)
		})
	}
	t.Run("forgotten/identical", identical)
}

// TestReusedCallbackReportIsRefused: the same payment reported again with
// another amount is not the same report; the HTTP endpoint refuses it with
// 409 command_id_reused and records nothing. A failure reported again with
// other wording is the same report.
func TestReusedCallbackReportIsRefused(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	id := awaitingOrder(t, s)
	status, r := postCallback(t, s, callbackJSON(id, "pi_1", "succeeded", total))
	wantOK(t, "the first report", status, r, []string{"PaymentSucceeded"}, false)
	status, r = postCallback(t, s, callbackJSON(id, "pi_1", "succeeded", total+100))
	if status != 409 || r.Error == nil || r.Error.Code != string(domain.CodeCommandIDReused) {
		t.Fatalf("the payment reported again with another amount: %d %+v, want 409 command_id_reused", status, r)
	}
	if got := eventTypesOf(t, s, id); countOf(got, "PaymentSucceeded") != 1 || countOf(got, "RefundRequested") != 0 {
		t.Fatalf("events %v: the contradicting report was recorded", got)
	}

	other := awaitingOrder(t, s)
	failed := func(reason string) string {
		return fmt.Sprintf(`{"order_id":%q,"payment_id":"pi_2","amount":%d,"currency":"EUR","status":"failed","provider":"stripe","reason":%q}`,
			other, total, reason)
	}
	status, r = postCallback(t, s, failed("card declined"))
	wantOK(t, "a failure", status, r, []string{"PaymentFailed"}, false)
	status, r = postCallback(t, s, failed("card declined (code 51)"))
	wantOK(t, "the failure reported again in other words", status, r, []string{"PaymentFailed"}, true)
	if got := eventTypesOf(t, s, other); !slices.Equal(got, []string{"OrderPlaced", "StockReserved", "PaymentFailed"}) {
		t.Fatalf("events %v", got)
	}
}
