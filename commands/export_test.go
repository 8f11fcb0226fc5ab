package commands

import (
	"context"
	"time"

	"github.com/ordo-dev/ordo/jsonwire"
)

// Step runs the saga's reaction to one stored event of an order, as Run
// does for each event it receives, so tests can replay steps one by one
// (after a restart or a takeover the saga repeats steps it already took).
func (s *Saga) Step(ctx context.Context, orderID string, e StoredEvent) error {
	ev, err := jsonwire.DecodeEvent(e.Type, e.Data, e.Metadata)
	if err != nil {
		return err
	}
	return s.step(ctx, s.timers, orderID, ev, timerOrigin{position: e.Position, traceParent: ev.Meta.TraceParent})
}

// FireTimer sends the ExpirePayment of the order's payment timer as the
// saga does when the timer is due.
func (s *Saga) FireTimer(ctx context.Context, orderID string, deadline time.Time) error {
	return s.fire(ctx, paymentTimer{orderID: orderID, deadline: deadline})
}
