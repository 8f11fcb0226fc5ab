package serve

import (
	"context"
	"errors"
	"log/slog"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// executor runs transport commands through the command service and shapes
// the reply. Infrastructure failures are logged here, once, and answered
// with a generic message; both are retried (Retry). An event store that
// cannot be reached is told apart (code unavailable): the workers keep such
// a command until the store answers again, never dead-lettering it.
type executor struct {
	svc *commands.Service
	log *slog.Logger
}

var _ ordonats.Executor = executor{}

func (x executor) Execute(ctx context.Context, cmd ordonats.Command) ordonats.Outcome {
	res := x.svc.Execute(ctx, commands.Request{CommandID: cmd.ID, CommandType: cmd.Type, OrderID: cmd.OrderID,
		CorrelationID: cmd.CorrelationID, CausationID: cmd.CausationID, Body: cmd.Body})
	out := ordonats.Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Revision: res.Revision, Position: res.Position,
		Events: res.Events, State: string(res.State), Duplicate: res.Duplicate}
	if out.Events == nil {
		out.Events = []string{}
	}
	if res.Err == nil {
		return out
	}
	var de *domain.Error
	if errors.As(res.Err, &de) {
		out.Error = &ordonats.ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}
		return out
	}
	out.Retry = true
	if errors.Is(res.Err, commands.ErrUnavailable) {
		// The store's outage is logged by its adapter, once per interval,
		// not once per command; the workers keep the command until the
		// store answers again.
		out.Error = &ordonats.ErrorBody{Code: string(domain.CodeUnavailable), Message: "the event store is unavailable; " +
			"the command is kept and applied once it answers again, and resending it with the same command ID is safe"}
		return out
	}
	x.log.Error("command failed", "command_id", cmd.ID, "type", cmd.Type, "order_id", cmd.OrderID, "delivery", cmd.Delivery, "err", res.Err)
	out.Error = &ordonats.ErrorBody{Code: string(domain.CodeInternal), Message: "the event store did not accept the command; it will be retried"}
	return out
}

func mustJS(nc *natsgo.Conn) jetstream.JetStream {
	js, _ := jetstream.New(nc) // fails only for a nil connection
	return js
}
