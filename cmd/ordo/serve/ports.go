package serve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
)

// The ports of commands and projections are declared by those packages;
// the event store adapter knows neither. This file translates between
// them, so adapters never import each other (imports_test.go at the
// module's root keeps it so).

// orderStreams selects the order streams in $all.
var orderStreams = eventstore.Filter{StreamPrefixes: []string{commands.StreamName("")}}

// subscriptionCheckpoints is how many considered events of $all a
// subscription of the saga or the projections may pass before a checkpoint
// tells it how far it got without a matching event.
const subscriptionCheckpoints = 256

// CommandStore gives the command handlers and the stock service (package
// commands) the event store they declare, commands.EventStore.
type CommandStore struct {
	Store *eventstore.Store
	// Tracer, if set, puts every read and append in a span, a child of
	// the command's (tracing.go).
	Tracer trace.Tracer
}

var _ commands.EventStore = CommandStore{}

// AppendToStream implements commands.EventStore.
func (c CommandStore) AppendToStream(ctx context.Context, stream string, expected int64, events []commands.NewEvent) (_ commands.Appended, err error) {
	if c.Tracer != nil {
		var span trace.Span
		ctx, span = c.Tracer.Start(ctx, "eventstore append", trace.WithSpanKind(trace.SpanKindClient))
		defer func() { endSpan(span, err) }()
	}
	exp := eventstore.NoStream()
	if expected >= 0 {
		exp = eventstore.Exact(uint64(expected))
	}
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data[i] = eventstore.EventData{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
	}
	res, err := c.Store.Append(ctx, stream, exp, data...)
	if err != nil {
		return commands.Appended{}, commandError(err)
	}
	return commands.Appended{Revision: int64(res.Revision), Position: res.Position}, nil
}

// ReadStream implements commands.EventStore.
func (c CommandStore) ReadStream(ctx context.Context, stream string, from int64, fn func(commands.StoredEvent) error) (err error) {
	if c.Tracer != nil {
		var span trace.Span
		ctx, span = c.Tracer.Start(ctx, "eventstore read", trace.WithSpanKind(trace.SpanKindClient))
		defer func() {
			spanErr := err
			if errors.Is(err, commands.ErrStreamNotFound) {
				spanErr = nil // a new order's stream: no failure
			}
			endSpan(span, spanErr)
		}()
	}
	var fnErr error
	err = c.Store.ReadStream(ctx, stream, uint64(from), func(e eventstore.RecordedEvent) error {
		fnErr = fn(commands.StoredEvent{Revision: int64(e.Revision), Position: e.Position, Type: e.Type, Data: e.Data, Metadata: e.Metadata})
		return fnErr
	})
	if err != nil && err == fnErr {
		return err
	}
	return commandError(err)
}

// commandError translates the store's errors into those commands branches on.
func commandError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, eventstore.ErrWrongExpectedRevision):
		return fmt.Errorf("%w: %v", commands.ErrConflict, err)
	case errors.Is(err, eventstore.ErrStreamNotFound):
		return fmt.Errorf("%w: %v", commands.ErrStreamNotFound, err)
	case errors.Is(err, eventstore.ErrUnavailable):
		return fmt.Errorf("%w: %w", commands.ErrUnavailable, err)
	}
	return err
}

// SagaSource feeds the order saga (commands.SagaSource) from the $all
// subscription, filtered by the store to order streams.
type SagaSource struct{ Store *eventstore.Store }

var _ commands.SagaSource = SagaSource{}

// SubscribeOrderEvents implements commands.SagaSource.
func (s SagaSource) SubscribeOrderEvents(ctx context.Context, after uint64) (commands.SagaFeed, error) {
	sub, err := s.Store.SubscribeAll(ctx, eventstore.SubscribeOptions{From: after, FromStart: after == 0,
		Filter: orderStreams, CheckpointInterval: subscriptionCheckpoints})
	if err != nil {
		return nil, err
	}
	return sagaFeed{sub}, nil
}

type sagaFeed struct{ sub *eventstore.Subscription }

func (f sagaFeed) Next(ctx context.Context) (commands.SagaItem, error) {
	for {
		m, err := f.sub.Next(ctx)
		if err != nil {
			return commands.SagaItem{}, err
		}
		switch {
		case m.Event != nil:
			e := m.Event
			return commands.SagaItem{Stream: e.Stream, Position: e.Position, Event: &commands.StoredEvent{Revision: int64(e.Revision),
				Position: e.Position, Type: e.Type, Data: e.Data, Metadata: e.Metadata}}, nil
		case !m.CaughtUp:
			return commands.SagaItem{Position: m.Checkpoint}, nil
		}
	}
}

func (f sagaFeed) Close() error { return f.sub.Close() }

// ProjectionSource feeds the read models (projections.Source and
// projections.History) from the $all subscription and bulk reads of $all,
// filtered to order streams.
type ProjectionSource struct {
	Store *eventstore.Store
	// Tracer, if set, records a span for every traced event the read
	// models apply, continuing the event's trace (Projected).
	Tracer trace.Tracer
}

var (
	_ projections.Source      = ProjectionSource{}
	_ projections.History     = ProjectionSource{}
	_ projections.EventTracer = ProjectionSource{}
)

// Projected implements projections.EventTracer: a span "project <type>"
// in the event's trace, as long as the batch that applied it.
func (p ProjectionSource) Projected(eventType, traceParent string, start, end time.Time) {
	if p.Tracer == nil {
		return
	}
	ctx := traceContext.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceParent})
	_, span := p.Tracer.Start(ctx, "project "+eventType, trace.WithTimestamp(start))
	span.End(trace.WithTimestamp(end))
}

// SubscribeOrders implements projections.Source.
func (p ProjectionSource) SubscribeOrders(ctx context.Context, after uint64) (projections.Feed, error) {
	sub, err := p.Store.SubscribeAll(ctx, eventstore.SubscribeOptions{From: after, FromStart: after == 0,
		Filter: orderStreams, CheckpointInterval: subscriptionCheckpoints})
	if err != nil {
		return nil, err
	}
	return projectionFeed{sub}, nil
}

// ReadOrders implements projections.History with ScanAll: several reads
// of $all at once, so decoding runs on every core.
func (p ProjectionSource) ReadOrders(ctx context.Context, after uint64, fn func(*projections.StoredEvent) error) error {
	from := after
	if after > 0 {
		from = after + 1 // ScanAll's from is inclusive
	}
	var se projections.StoredEvent // fn keeps none, so one will do
	return p.Store.ScanAll(ctx, from, orderStreams, func(e eventstore.RecordedEvent) error {
		se = projectionEvent(&e)
		return fn(&se)
	})
}

// Head implements projections.Source.
func (p ProjectionSource) Head(ctx context.Context) (uint64, error) { return p.Store.Head(ctx) }

type projectionFeed struct{ sub *eventstore.Subscription }

func (f projectionFeed) Next(ctx context.Context) (projections.FeedItem, error) {
	m, err := f.sub.Next(ctx)
	switch {
	case err != nil:
		return projections.FeedItem{}, err
	case m.Event != nil:
		e := projectionEvent(m.Event)
		return projections.FeedItem{Event: &e}, nil
	}
	return projections.FeedItem{CaughtUp: m.CaughtUp, Checkpoint: m.Checkpoint}, nil
}

func (f projectionFeed) Close() error { return f.sub.Close() }

func projectionEvent(e *eventstore.RecordedEvent) projections.StoredEvent {
	return projections.StoredEvent{Stream: e.Stream, Revision: e.Revision, Position: e.Position,
		Type: e.Type, Data: e.Data, Metadata: e.Metadata, Created: e.Created}
}
