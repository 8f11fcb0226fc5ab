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
// with a generic message.
type executor struct {
	svc *commands.Service
	log *slog.Logger
}

var _ ordonats.Executor = executor{}

// Fingerprint implements ordonats.Executor with commands.Fingerprint.
func (x executor) Fingerprint(cmd ordonats.Command) (string, error) {
	return commands.Fingerprint(commands.Request{CommandID: cmd.ID, CommandType: cmd.Type, OrderID: cmd.OrderID, Body: cmd.Body})
}

func (x executor) Execute(ctx context.Context, cmd ordonats.Command) ordonats.Outcome {
	res := x.svc.Execute(ctx, commands.Request{CommandID: cmd.ID, CommandType: cmd.Type, OrderID: cmd.OrderID,
		CorrelationID: cmd.CorrelationID, CausationID: cmd.CausationID, Body: cmd.Body, Fingerprint: cmd.Fingerprint})
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
	x.log.Error("command failed", "command_id", cmd.ID, "type", cmd.Type, "order_id", cmd.OrderID, "delivery", cmd.Delivery, "err", res.Err)
	out.Retry = true
	out.Error = &ordonats.ErrorBody{Code: string(domain.CodeUnavailable), Message: "the event store did not accept the command; it will be retried"}
	return out
}

func mustJS(nc *natsgo.Conn) jetstream.JetStream {
	js, _ := jetstream.New(nc) // fails only for a nil connection
	return js
}
