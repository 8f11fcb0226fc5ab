package serve

import (
	"context"
	"errors"
	"fmt"
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
	// sagaStock: the saga reserves every order's stock (the service runs
	// without --manual-stock), so the stock outcome is its alone to record.
	sagaStock bool
}

var (
	_ ordonats.Executor     = executor{}
	_ ordonats.Preparer     = executor{}
	_ ordonats.StockHandler = (*commands.StockAPI)(nil)
)

// Fingerprint implements ordonats.Executor with commands.Fingerprint.
func (x executor) Fingerprint(cmd ordonats.Command) (string, error) {
	orderID, _ := domain.NormalizeOrderID(cmd.OrderID) // one command, whatever the case of its order ID
	return commands.Fingerprint(commands.Request{CommandID: cmd.ID, CommandType: cmd.Type, OrderID: orderID, Body: cmd.Body})
}

// Prepare implements ordonats.Preparer: the command is decoded once, for
// its fingerprint and its execution.
func (x executor) Prepare(cmd ordonats.Command) (string, func(context.Context, ordonats.Command) ordonats.Outcome, error) {
	orderID, _ := domain.NormalizeOrderID(cmd.OrderID)
	fp, decoded, err := commands.FingerprintCommand(commands.Request{CommandID: cmd.ID, CommandType: cmd.Type, OrderID: orderID, Body: cmd.Body})
	if err != nil {
		return "", nil, err
	}
	return fp, func(ctx context.Context, cmd ordonats.Command) ordonats.Outcome { return x.execute(ctx, cmd, decoded) }, nil
}

func (x executor) Execute(ctx context.Context, cmd ordonats.Command) ordonats.Outcome {
	return x.execute(ctx, cmd, nil)
}

// execute runs cmd, decoded already unless decoded is nil.
func (x executor) execute(ctx context.Context, cmd ordonats.Command, decoded domain.Command) ordonats.Outcome {
	// The subject's order ID in any case names the order of its canonical
	// form; the outcome names that one.
	orderID, _ := domain.NormalizeOrderID(cmd.OrderID)
	out := ordonats.Outcome{CommandID: cmd.ID, OrderID: orderID, Events: []string{}}
	if x.sagaStock && sagaOnly(cmd.Type) {
		out.Error = &ordonats.ErrorBody{Code: string(domain.CodeSagaOnly), Message: fmt.Sprintf(
			"%s is sent by Ordo's stock saga, which reserves the order's stock when it is placed; clients send it only to a service run with --manual-stock", cmd.Type)}
		return out
	}
	res := x.svc.Execute(ctx, commands.Request{CommandID: cmd.ID, CommandType: cmd.Type, OrderID: orderID,
		CorrelationID: cmd.CorrelationID, CausationID: cmd.CausationID, Body: cmd.Body, Fingerprint: cmd.Fingerprint, Decoded: decoded})
	out.Revision, out.Position, out.State, out.Duplicate = res.Revision, res.Position, string(res.State), res.Duplicate
	if res.Events != nil {
		out.Events = res.Events
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
	x.log.Error("command failed", "command_id", cmd.ID, "order_id", cmd.OrderID, "trace_id", traceIDOf(ctx),
		"type", cmd.Type, "delivery", cmd.Delivery, "err", res.Err)
	out.Error = &ordonats.ErrorBody{Code: string(domain.CodeInternal), Message: "the event store did not accept the command; it will be retried"}
	return out
}

// sagaOnly reports whether a command records the stock saga's decision: with
// the saga on, a client that sent it could move an order to awaiting
// payment with no stock reserved (or cancel it on a whim).
func sagaOnly(commandType string) bool {
	return commandType == domain.CmdMarkStockReserved || commandType == domain.CmdMarkStockRejected
}

func mustJS(nc *natsgo.Conn) jetstream.JetStream {
	js, _ := jetstream.New(nc) // fails only for a nil connection
	return js
}
