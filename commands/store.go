package commands

import (
	"context"
	"errors"
)

// EventStore is what command handling needs from the event store. The
// composition (cmd/ordo/serve, CommandStore) translates the eventstore
// adapter to it, so this package never imports infrastructure and the
// adapter never imports this package.
type EventStore interface {
	// AppendToStream appends events to stream if its last revision equals
	// expected (-1: the stream must not exist). It returns the revision and
	// $all position of the last appended event once they are durable.
	// Errors: ErrConflict when the expectation failed; ErrUnavailable when
	// the store could not be reached or did not answer in time; anything
	// else is an infrastructure failure. After either of the last two the
	// append may or may not have happened, and the command may be retried
	// later with the same command ID.
	AppendToStream(ctx context.Context, stream string, expected int64, events []NewEvent) (Appended, error)
	// ReadStream calls fn for every event of stream from revision from on,
	// in order. A stream that does not exist yields ErrStreamNotFound; a
	// store that cannot be reached, ErrUnavailable; fn's error is returned
	// as it is.
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
	// ErrUnavailable: the event store could not be reached or did not
	// answer in time. Nothing is decided; retry the command later.
	ErrUnavailable = errors.New("event store unavailable")
)
