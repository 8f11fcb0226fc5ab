package commands_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// sentTimeouts records the ExpirePayment commands the saga sends.
type sentTimeouts struct {
	mu   sync.Mutex
	sent []domain.ExpirePayment
	ids  []string
}

func (s *sentTimeouts) Expire(_ context.Context, cmd domain.ExpirePayment, commandID, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent, s.ids = append(s.sent, cmd), append(s.ids, commandID)
	return nil
}

// TestDueTimerSendsOnlyForAnOrderAwaitingPayment: a due payment timer
// sends ExpirePayment for an order that awaits payment, and nothing for
// one paid or cancelled since (whose stopping event the saga has not
// handled yet).
func TestDueTimerSendsOnlyForAnOrderAwaitingPayment(t *testing.T) {
	r := newSagaRig(t)
	sent := &sentTimeouts{}
	saga := commands.NewSaga(r.orders, r.stock, sent, nil, nil, commands.SagaOptions{})
	line := domain.Line{SKU: "timed", Quantity: 1, UnitPrice: 100}
	unpaid, paid, cancelled := r.place(line), r.place(line), r.place(line)
	for _, id := range []string{unpaid, paid, cancelled} {
		r.do(domain.MarkStockReserved{Order: id})
	}
	r.do(domain.ConfirmPayment{Order: paid, PaymentID: "p-1", Amount: 100})
	r.do(domain.CancelOrder{Order: cancelled, Reason: "changed my mind"})

	deadline := time.Now().Add(-time.Second)
	for _, id := range []string{unpaid, paid, cancelled} {
		if err := saga.FireTimer(r.ctx(), id, deadline); err != nil {
			t.Fatalf("fire the timer of %s: %v", id, err)
		}
	}
	sent.mu.Lock()
	first := append([]domain.ExpirePayment(nil), sent.sent...)
	sent.mu.Unlock()
	if len(first) != 1 || first[0].Order != unpaid || !first[0].Deadline.Equal(deadline) {
		t.Fatalf("sent %+v, want only the unpaid order's ExpirePayment (%s, deadline %v)", first, unpaid, deadline)
	}
	again := saga.FireTimer(r.ctx(), unpaid, deadline)
	sent.mu.Lock()
	defer sent.mu.Unlock()
	if again != nil || len(sent.ids) != 2 || sent.ids[0] != sent.ids[1] {
		t.Fatalf("a second firing: %v, command IDs %v; want the same command ID again", again, sent.ids)
	}
}
