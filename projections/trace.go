package projections

import "time"

// EventTracer continues the traces of the events the read models apply.
// A Source that also implements it is told, after each committed batch,
// about every event in it that carries a trace context (its metadata's
// traceparent); the composition implements it with OpenTelemetry, so this
// package depends on no tracing library.
type EventTracer interface {
	// Projected reports that an event of eventType, decided in the span
	// traceParent, was applied in a batch that ran from start to end.
	// It must be quick: it runs on the projection's goroutine.
	Projected(eventType, traceParent string, start, end time.Time)
}

// traceBatch reports the batch's traced events to the tracer, if any.
func (r *Runner) traceBatch(changes []change, start, end time.Time) {
	if r.tracer == nil {
		return
	}
	for _, c := range changes {
		if c.traceParent != "" && c.data != nil {
			r.tracer.Projected(c.data.EventType(), c.traceParent, start, end)
		}
	}
}
