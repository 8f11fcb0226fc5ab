package nats

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
)

// CommandObserver is told about every command the workers answer and every
// dead letter they record, for metrics; the composition implements it.
// Its methods run on the workers' lanes, once per command: they must be
// quick and must not block.
type CommandObserver interface {
	// CommandAnswered: a command of commandType (a type of
	// domain.CommandTypes, or "unknown") was answered with code ("ok" when
	// it succeeded), accepted being when JetStream stored it.
	CommandAnswered(commandType, code string, accepted time.Time)
	// DeadLettered: a command was recorded as a dead letter with code.
	DeadLettered(code string)
}

// CodeOK is the code CommandObserver reports for a command that succeeded.
const CodeOK = "ok"

// TypeUnknown stands for a command type the domain does not know, so that
// clients naming types at random cannot grow the metrics without bound.
const TypeUnknown = "unknown"

// knownTypes are the command types reported as they are.
var knownTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range domain.CommandTypes() {
		m[t] = true
	}
	return m
}()

// observe reports an answered command to the observer, if any.
func (w *Worker) observe(commandType string, accepted time.Time, out Outcome) {
	if w.cfg.Observer == nil {
		return
	}
	if !knownTypes[commandType] {
		commandType = TypeUnknown
	}
	code := CodeOK
	if out.Error != nil {
		code = out.Error.Code
	}
	w.cfg.Observer.CommandAnswered(commandType, code, accepted)
}

// WorkerBacklog is the workers' consumer as JetStream sees it.
type WorkerBacklog struct {
	Pending     uint64 // commands stored and not yet delivered to a worker
	AckPending  int    // delivered, not yet acknowledged (in flight)
	Redelivered int    // of those in flight, delivered more than once
}

// Backlog asks JetStream about the workers' consumer (one round trip).
func Backlog(ctx context.Context, js jetstream.JetStream) (WorkerBacklog, error) {
	c, err := js.Consumer(ctx, StreamCommands, ConsumerWorkers)
	if err != nil {
		return WorkerBacklog{}, fmt.Errorf("consumer %s: %w", ConsumerWorkers, err)
	}
	info := c.CachedInfo()
	return WorkerBacklog{Pending: info.NumPending, AckPending: info.NumAckPending, Redelivered: info.NumRedelivered}, nil
}
