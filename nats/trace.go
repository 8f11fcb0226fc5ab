package nats

import (
	"context"
	"log/slog"

	natsgo "github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Commands carry the W3C trace context (traceparent, tracestate) in their
// NATS headers, lower-case as the W3C names them: the client's send span
// is the parent of the worker's span, and a payment timer carries the
// span that scheduled it to the ExpirePayment it fires.

// tracerName names this package's spans' instrumentation scope.
const tracerName = "github.com/ordo-dev/ordo/nats"

// traceContext is the W3C propagator, used directly rather than through
// the OpenTelemetry globals.
var traceContext = propagation.TraceContext{}

// headerCarrier adapts NATS headers, which are case-sensitive, to the
// propagator.
type headerCarrier natsgo.Header

func (c headerCarrier) Get(key string) string { return natsgo.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { natsgo.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// tracerOf returns the provider's tracer for this package; nil traces nothing.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// injectTrace writes ctx's span context into h.
func injectTrace(ctx context.Context, h natsgo.Header) { traceContext.Inject(ctx, headerCarrier(h)) }

// extractTrace returns ctx with the span context h carries as its remote parent.
func extractTrace(ctx context.Context, h natsgo.Header) context.Context {
	return traceContext.Extract(ctx, headerCarrier(h))
}

// commandAttrs describe a command on its spans (set only on spans that
// record, so an untraced command allocates none).
func commandAttrs(cmd Command) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("ordo.command_id", cmd.ID), attribute.String("ordo.order_id", cmd.OrderID),
		attribute.String("ordo.command_type", cmd.Type), attribute.String("messaging.system", "nats")}
}

// markOutcome marks a command's span failed when the outcome is an error.
func markOutcome(span trace.Span, out Outcome) {
	if out.Error != nil && span.IsRecording() {
		span.SetAttributes(attribute.String("ordo.error_code", out.Error.Code))
		span.SetStatus(codes.Error, out.Error.Message)
	}
}

// endWithOutcome ends a command's span, marked with its outcome.
func endWithOutcome(span trace.Span, out Outcome) {
	markOutcome(span, out)
	span.End()
}

// traceID is the trace ctx's span belongs to, for log lines ("" if none).
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// commandLog is the log of one command: every line about it carries its
// command ID, order ID and trace ID, so an operator can follow it from
// the log to its trace and its order.
func commandLog(log *slog.Logger, ctx context.Context, commandID, orderID string) *slog.Logger {
	return log.With("command_id", commandID, "order_id", orderID, "trace_id", traceID(ctx))
}
