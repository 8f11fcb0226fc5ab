package tests

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
)

func TestFullLifecycle(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	id := uuid.NewString()
	steps := []struct {
		send  func() (string, error)
		event string
		state domain.State
	}{
		{func() (string, error) { o, err := s.client.PlaceOrder(ctx, placeCmd(id)); return o.State, err }, domain.EvtOrderPlaced, domain.StatePlaced},
		{func() (string, error) {
			o, err := s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id})
			return o.State, err
		}, domain.EvtStockReserved, domain.StateAwaitingPayment},
		{func() (string, error) {
			o, err := s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "p-1", Amount: total, Provider: "stripe"})
			return o.State, err
		}, domain.EvtPaymentSucceeded, domain.StatePaid},
		{func() (string, error) {
			o, err := s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "JD1"})
			return o.State, err
		}, domain.EvtOrderShipped, domain.StateShipped},
		{func() (string, error) {
			o, err := s.client.ConfirmDelivery(ctx, domain.ConfirmDelivery{Order: id})
			return o.State, err
		}, domain.EvtOrderDelivered, domain.StateDelivered},
		{func() (string, error) {
			o, err := s.client.CompleteOrder(ctx, domain.CompleteOrder{Order: id})
			return o.State, err
		}, domain.EvtOrderCompleted, domain.StateCompleted},
	}
	for i, st := range steps {
		state, err := st.send()
		if err != nil || state != string(st.state) {
			t.Fatalf("step %d (%s): state %q, err %v; want %s", i, st.event, state, err, st.state)
		}
	}
	view, err := s.client.GetOrder(ctx, id)
	if err != nil || view.State != domain.StateCompleted || view.Revision != 5 || view.Shipment == nil || view.Shipment.TrackingNumber != "JD1" {
		t.Fatalf("GetOrder: %+v, %v", view, err)
	}
	_, err = s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "JD2"})
	if !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("shipping a completed order: got %v, want illegal_transition", err)
	}
}

func TestRefundPath(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	id := paidOrder(t, s)
	must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r-1", Amount: 1000, Reason: "damaged"}))
	_, err := s.client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r-2", Amount: 1501, Reason: "too much"})
	if !errors.Is(err, domain.ErrRefundExceedsPaid) {
		t.Fatalf("refund beyond payment: got %v, want refund_exceeds_paid", err)
	}
	must(t)(s.client.CompleteRefund(ctx, domain.CompleteRefund{Order: id, RefundID: "r-1"}))
	must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r-2", Amount: 1500, Reason: "rest"}))
	out := must(t)(s.client.CompleteRefund(ctx, domain.CompleteRefund{Order: id, RefundID: "r-2"}))
	if out.State != string(domain.StateRefunded) || !slices.Equal(out.Events, []string{domain.EvtRefundCompleted, domain.EvtOrderRefunded}) {
		t.Fatalf("last refund: %+v, want RefundCompleted+OrderRefunded and state refunded", out)
	}
	// A cancel after payment opens a refund by itself; a late payment on the
	// cancelled order is recorded and refunded too.
	id2 := paidOrder(t, s)
	out = must(t)(s.client.CancelOrder(ctx, domain.CancelOrder{Order: id2, Reason: "changed mind"}))
	if !slices.Equal(out.Events, []string{domain.EvtOrderCancelled, domain.EvtRefundRequested}) {
		t.Fatalf("cancel after payment: %v", out.Events)
	}
	out = must(t)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id2, PaymentID: "late-1", Amount: total}))
	if !slices.Equal(out.Events, []string{domain.EvtPaymentSucceeded, domain.EvtRefundRequested}) || out.State != string(domain.StateCancelled) {
		t.Fatalf("late payment: %+v", out)
	}
	view, err := s.client.GetOrder(ctx, id2)
	if err != nil || len(view.Refunds) != 2 || view.Received.Amount != 2*total {
		t.Fatalf("cancelled order view: %+v %v", view, err)
	}
}
