package serve

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ordo-dev/ordo/commands"
)

// This file is the service's OpenTelemetry tracing. A command's trace runs
// from the client's send (nats.Client) through the worker's span (nats),
// the command's execution with its event store reads and appends (here,
// through commands.Tracer and CommandStore), to the reply; the events'
// metadata carry the traceparent, so the saga's steps, the stock commands
// they issue and the payment timers they schedule continue the same
// trace. With no TracerProvider nothing is recorded and the spans are
// no-ops, though trace context that arrives with a command still travels
// on into its events.

// instrumentation names the service's tracer.
const instrumentation = "github.com/ordo-dev/ordo/cmd/ordo/serve"

// OTLPTracerProvider exports spans over OTLP gRPC, configured by the
// standard OTEL_EXPORTER_OTLP_* environment variables (the endpoint
// first); `ordo serve` uses it when OTEL_EXPORTER_OTLP_ENDPOINT is set.
// Shut it down to flush the spans still batched.
func OTLPTracerProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (check OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "ordo")))
	if err != nil {
		res = resource.Default()
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// tracerOf returns the service's tracer; a nil provider records nothing.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(instrumentation)
}

// otelTracer implements commands.Tracer with OpenTelemetry.
type otelTracer struct{ t trace.Tracer }

var _ commands.Tracer = otelTracer{}

// traceContext is the W3C propagator, used directly rather than through
// the OpenTelemetry globals.
var traceContext = propagation.TraceContext{}

// Start implements commands.Tracer.
func (o otelTracer) Start(ctx context.Context, name, parent string) (context.Context, string, func(error)) {
	if parent != "" && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": parent})
	}
	ctx, span := o.t.Start(ctx, name)
	return ctx, traceParent(span.SpanContext()), func(err error) { endSpan(span, err) }
}

// traceParent formats a span context as a W3C traceparent ("" if invalid).
func traceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	flags := "00"
	if sc.IsSampled() {
		flags = "01"
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + flags
}

// endSpan ends span, recording err as its failure.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceIDOf is the trace of ctx's span, for log lines ("" if none).
func traceIDOf(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}
