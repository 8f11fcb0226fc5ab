package commands

import "context"

// Tracer continues traces through the service: the composition implements
// it with OpenTelemetry (cmd/ordo/serve/tracing.go), so this package
// depends on no tracing library. A nil Tracer in the options traces
// nothing and costs nothing.
type Tracer interface {
	// Start starts a span named name, a child of the span ctx carries or,
	// when it carries none, of parent (a W3C traceparent; empty: a new
	// trace). It returns ctx carrying the span, the span's traceparent
	// (recorded in the metadata of the events it decides, so whatever
	// reacts to them continues the trace; empty when nothing is traced),
	// and end, to be called once with the outcome.
	Start(ctx context.Context, name, parent string) (_ context.Context, traceParent string, end func(err error))
}

// noTracer is the Tracer of services given none.
type noTracer struct{}

func (noTracer) Start(ctx context.Context, _, parent string) (context.Context, string, func(error)) {
	return ctx, parent, func(error) {}
}

func tracerOr(t Tracer) Tracer {
	if t == nil {
		return noTracer{}
	}
	return t
}
