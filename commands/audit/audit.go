// Package audit reads the event store's history back through the domain:
// an order's timeline, event by event with the state each led to (Replay,
// Timeline), and a check of every stream against the lifecycle, the stock
// invariants and each other (Verify). The ordo CLI's history, state and
// verify commands call it; it declares the reads it needs (StreamReader,
// Scanner), which the composition (cmd/ordo/serve, AuditStore) provides.
package audit

import (
	"context"
	"time"
)

// Event is one stored event as the audit reads it.
type Event struct {
	Stream   string
	Revision uint64
	Position uint64 // $all commit position
	Type     string
	Data     []byte
	Metadata []byte
	Created  time.Time // when the store recorded it
}

// StreamReader reads one stream, for an order's timeline.
type StreamReader interface {
	// ReadStream calls fn for every event of stream from revision from on,
	// in order. A stream that does not exist yields
	// commands.ErrStreamNotFound; fn's error is returned as it is.
	ReadStream(ctx context.Context, stream string, from uint64, fn func(Event) error) error
}

// Scanner reads the whole log, for Verify.
type Scanner interface {
	// ScanAll calls fn, from one goroutine, for every user event of $all
	// from position from (inclusive) on, in $all order, only those of
	// streams whose name starts with one of prefixes (every stream when
	// there are none). fn's error ends the scan and is returned as it is.
	ScanAll(ctx context.Context, from uint64, prefixes []string, fn func(Event) error) error
}
