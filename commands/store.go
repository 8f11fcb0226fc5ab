package commands

import (
	"context"
	"errors"
)

// EventStore is what command handling needs from the event store. The
// eventstore package's adapter satisfies it through a thin translation in the
// composition (cmd/ordo/serve), so this package never imports infrastructure.
type EventStore interface {
	// AppendToStream appends events to stream if its last revision equals
	// expected (-1: the stream must not exist). It returns the revision and
	// $all position of the last appended event once they are durable.
	// Errors: ErrConflict when the expectation failed; anything else is an
	// infrastructure failure and the command may be retried later.
	AppendToStream(ctx context.Context, stream string, expected int64, events []NewEvent) (Appended, error)
	// ReadStream calls fn for every event of stream from revision from on,
	// in order. A stream that does not exist yields ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, from int64, fn func(StoredEvent) error) error
}

// NewEvent is an encoded event ready to append.
type NewEvent struct {
	ID       [16]byte // deterministic per command and index, so a re-append is recognised by the store too
	Type     string
	Data     []byte
	Metadata []byte
}

// StoredEvent is an event read back from a stream.
type StoredEvent struct {
	Revision int64
	Position uint64
	Type     string
	Data     []byte
	Metadata []byte
}

// Appended is the result of a successful append.
type Appended struct {
	Revision int64
	Position uint64
}

// Errors an EventStore returns for the cases command handling branches on.
var (
	// ErrConflict: the stream moved on since it was read; reload and decide again.
	ErrConflict = errors.New("stream revision conflict")
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("stream not found")
)
