package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
)

// SubjectTimerPrefix + <order-id> holds an order's payment timer: a
// JetStream message schedule in the command stream whose target is the
// order's ExpirePayment command subject. The workers do not consume it
// (their filter is ordo.cmd.order.>); the server fires it at the deadline
// into the command stream, where it is handled like any command. Timers
// survive restarts with the stream; one timer per order (republishing
// replaces it, purging the subject cancels it).
const SubjectTimerPrefix = "ordo.cmd.timer."

// Schedule headers (ADR-51).
const (
	headerSchedule       = "Nats-Schedule"
	headerScheduleTarget = "Nats-Schedule-Target"
)

// PaymentTimers schedules ExpirePayment commands through JetStream message
// schedules; it implements commands.PaymentTimers. Use it by pointer.
type PaymentTimers struct {
	JS jetstream.JetStream

	// stream is the command stream's handle, looked up on the first Cancel:
	// looking it up costs a STREAM.INFO round trip, which every confirmed
	// payment paid before. The handle only carries the stream's name, so it
	// stays valid if the stream is recreated.
	mu     sync.Mutex
	stream jetstream.Stream
}

// Schedule starts (or replaces) the order's timer.
func (t *PaymentTimers) Schedule(ctx context.Context, cmd domain.ExpirePayment, commandID string) error {
	body, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	m := natsgo.NewMsg(SubjectTimerPrefix + cmd.Order)
	m.Data = body
	// RFC 3339 with fractions: nats.go's own helper drops them and the
	// timer could fire up to a second early (see nats-notes).
	m.Header.Set(headerSchedule, "@at "+cmd.Deadline.UTC().Format(time.RFC3339Nano))
	m.Header.Set(headerScheduleTarget, CommandSubject(cmd.Order, domain.CmdExpirePayment))
	// The scheduler strips Nats-Msg-Id from what it fires; our own header
	// carries the command ID through.
	m.Header.Set(HeaderCommandID, commandID)
	m.Header.Set(HeaderCommandType, domain.CmdExpirePayment)
	// The scheduler keeps headers: the ExpirePayment it fires continues
	// the trace of the span that scheduled it.
	injectTrace(ctx, m.Header)
	if _, err := t.JS.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("schedule the payment timer of order %s: %w", cmd.Order, err)
	}
	return nil
}

// Cancel removes the order's timer if it has not fired.
func (t *PaymentTimers) Cancel(ctx context.Context, orderID string) error {
	s, err := t.commandStream(ctx)
	if err != nil {
		return fmt.Errorf("cancel the payment timer of order %s: %w", orderID, err)
	}
	err = s.Purge(ctx, jetstream.WithPurgeSubject(SubjectTimerPrefix+orderID))
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("cancel the payment timer of order %s: %w", orderID, err)
	}
	return nil
}

func (t *PaymentTimers) commandStream(ctx context.Context) (jetstream.Stream, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stream == nil {
		s, err := t.JS.Stream(ctx, StreamCommands)
		if err != nil {
			return nil, err
		}
		t.stream = s
	}
	return t.stream, nil
}
