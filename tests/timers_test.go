package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
)

// TestPaymentTimerSurvivesRestart: the saga keeps payment timers in
// memory; one started before a restart, whose StockReserved the saga's
// checkpoint had already passed, still cancels its unpaid order after the
// restart, and a paid order's timer does not come back.
func TestPaymentTimerSurvivesRestart(t *testing.T) {
	const timeout = 8 * time.Second
	cfg := sagaConfig(t, t.TempDir(), timeout)
	s := start(t, cfg)
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "restart-sku", 10, ""); err != nil {
		t.Fatal(err)
	}
	unpaid, paid, later := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, id := range []string{unpaid, paid} {
		must(t)(s.client.PlaceOrder(ctx, oneLine(id, "restart-sku", 1)))
	}
	settle(t, ctx, s.client, []string{unpaid, paid})
	// An order after them moves the saga's checkpoint past the unpaid
	// order's StockReserved.
	must(t)(s.client.PlaceOrder(ctx, oneLine(later, "restart-sku", 1)))
	settle(t, ctx, s.client, []string{later})
	for i, id := range []string{paid, later} {
		must(t)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: fmt.Sprintf("p-%d", i), Amount: 100}))
	}
	type sagaStatus struct {
		Saved    uint64 `json:"checkpoint"`
		Seen     uint64 `json:"last_event_position"`
		InFlight int    `json:"in_flight"`
		Handled  int64  `json:"events_handled"`
	}
	eventually.True(t, 20*time.Second, "the saga's checkpoint to pass every event", func() bool {
		resp, err := http.Get("http://" + s.svc.HTTPAddr() + "/v1/saga")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st sagaStatus
		// OrderPlaced and StockReserved of three orders, two payments.
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.InFlight == 0 && st.Handled >= 8 && st.Saved >= st.Seen
	})

	s.stop(t)
	s = start(t, cfg)
	if v, err := s.client.GetOrder(ctx, unpaid); err != nil || v.State != domain.StateAwaitingPayment {
		t.Fatalf("after the restart the unpaid order is %s (%v), want awaiting_payment: the restart took longer than the %v timeout", v.State, err, timeout)
	}
	eventually.NoError(t, 30*time.Second, "the unpaid order to be cancelled by its timer after the restart", func() error {
		v, err := s.client.GetOrder(ctx, unpaid)
		if err != nil {
			return err
		}
		if v.State != domain.StateCancelled {
			return fmt.Errorf("still %s", v.State)
		}
		if !strings.Contains(v.Cancelled, "payment timeout") {
			t.Fatalf("cancelled for %q, want the payment timeout", v.Cancelled)
		}
		return nil
	})
	for _, id := range []string{paid, later} {
		if v, err := s.client.GetOrder(ctx, id); err != nil || v.State != domain.StatePaid {
			t.Errorf("paid order %s is %s (%v) after its deadline, want paid", id, v.State, err)
		}
	}
}
