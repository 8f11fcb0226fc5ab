package nats

import (
	"context"
	"encoding/json"
	"fmt"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
)

// SubjectTimerPrefix + <order-id> held an order's payment timer before the
// saga kept the timers itself (commands/timers.go): a JetStream message
// schedule in the command stream whose target is the order's ExpirePayment
// command subject. A data directory from then may still hold some; the
// server fires them at their deadline like before, and the workers (whose
// filter is the whole stream) acknowledge the schedules themselves without
// handling them.
const SubjectTimerPrefix = "ordo.cmd.timer."

// Schedule headers (ADR-51), of the timers above.
const (
	headerSchedule       = "Nats-Schedule"
	headerScheduleTarget = "Nats-Schedule-Target"
)

// PaymentTimeouts sends the ExpirePayment command of an order whose
// payment timer is due into the command stream, where the workers handle
// it like any command; it implements commands.PaymentTimeouts.
type PaymentTimeouts struct {
	JS jetstream.JetStream
}

// Expire stores the order's ExpirePayment in the command stream. Its
// message ID is the command ID, so a timer fired twice within the stream's
// dedupe window is stored once (and a later second firing is a duplicate
// command, answered with the first outcome).
func (t PaymentTimeouts) Expire(ctx context.Context, cmd domain.ExpirePayment, commandID, traceParent string) error {
	body, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	m := natsgo.NewMsg(CommandSubject(cmd.Order, domain.CmdExpirePayment))
	m.Data = body
	m.Header.Set(HeaderMsgID, commandID)
	m.Header.Set(HeaderCommandID, commandID)
	m.Header.Set(HeaderCommandType, domain.CmdExpirePayment)
	if traceParent != "" {
		// The ExpirePayment continues the trace of the saga step that
		// started the timer.
		headerCarrier(m.Header).Set("traceparent", traceParent)
	}
	if _, err := t.JS.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("send the payment timeout of order %s: %w", cmd.Order, err)
	}
	return nil
}
