// Package eventstore is Ordo's port to an EventStoreDB-compatible event
// store: the small set of operations the application needs, with the
// infrastructure's errors translated into this package's sentinels.
//
// The port has two implementations behind one API (Store). Connect reaches
// any EventStoreDB or KurrentDB, or the embedded server of another process,
// through the official client over gRPC
// (github.com/EventStore/EventStore-Client-Go/v4). OpenEmbedded runs the
// embedded store (package esdbserver) in this process and calls its storage
// directly, while the embedded server keeps serving gRPC for other
// processes. Both pass one acceptance suite (eventstore/acceptance), so
// moving to a cluster stays a connection string.
package eventstore

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Errors callers branch on with errors.Is.
var (
	// ErrWrongExpectedRevision: the stream is not at the expected revision
	// (another writer got there first). Reload and decide again.
	ErrWrongExpectedRevision = errors.New("wrong expected stream revision")
	// ErrStreamNotFound: the stream has no events (or was soft-deleted).
	ErrStreamNotFound = errors.New("stream not found")
	// ErrStreamDeleted: the stream was tombstoned and can never be written again.
	ErrStreamDeleted = errors.New("stream deleted")
	// ErrUnavailable: the event store cannot be reached, is shutting down,
	// or did not answer in time; the operation may succeed later.
	ErrUnavailable = errors.New("event store unavailable")
	// ErrAppendTooLarge: the append exceeds the server's maximum append size.
	ErrAppendTooLarge = errors.New("append exceeds the maximum append size")
)

// EventData is an event to append: JSON data and JSON metadata.
type EventData struct {
	ID       uuid.UUID
	Type     string
	Data     []byte
	Metadata []byte
}

// RecordedEvent is an event read back.
type RecordedEvent struct {
	Stream   string
	Revision uint64
	Position uint64 // $all commit position
	ID       uuid.UUID
	Type     string
	Data     []byte
	Metadata []byte
	Created  time.Time // UTC, to the 100 ns EventStoreDB keeps
}

// expectKind is the form of an append's or delete's expectation.
type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectRevision
)

// Expected is an append's or delete's expectation of the stream's revision.
type Expected struct {
	kind expectKind
	rev  uint64
}

// Any appends whatever the stream's revision.
func Any() Expected { return Expected{kind: expectAny} }

// NoStream appends only if the stream does not exist yet.
func NoStream() Expected { return Expected{kind: expectNoStream} }

// StreamExists appends only if the stream exists.
func StreamExists() Expected { return Expected{kind: expectStreamExists} }

// Exact appends only if the stream's last revision is rev.
func Exact(rev uint64) Expected { return Expected{kind: expectRevision, rev: rev} }

// AppendResult is where an append's last event landed.
type AppendResult struct {
	Revision uint64 // stream revision of the last event
	Position uint64 // $all commit position of the last event
}

// Store is a connection to an event store: the official client over gRPC
// (Connect) or the embedded store in this process (OpenEmbedded). Every
// method is safe for concurrent use.
type Store struct {
	b   backend
	url string
}

// backend is one way to reach a store. Its errors are already translated
// to this package's sentinels.
type backend interface {
	appendEvents(ctx context.Context, stream string, exp Expected, events []EventData) (AppendResult, error)
	// readStream calls fn for up to count events (0: all) of stream, from
	// revision from, or from its end when fromEnd, forwards or backwards.
	readStream(ctx context.Context, stream string, from uint64, fromEnd, backwards bool, count uint64, fn func(RecordedEvent) error) error
	// readAll calls fn for every record of $all with a position in
	// [from, to) (to 0: up to the head), system records included, forwards,
	// in reads of up to page records each.
	readAll(ctx context.Context, from, to, page uint64, fn func(RecordedEvent) error) error
	head(ctx context.Context) (uint64, error)
	subscribeAll(ctx context.Context, opts SubscribeOptions) (subscription, error)
	deleteStream(ctx context.Context, stream string, exp Expected, tombstone bool) (uint64, error)
	// scanBounds sends, in increasing order, positions after start up to
	// about head where ScanAll may cut the log, and closes bounds.
	scanBounds(ctx context.Context, start, head uint64, cfg scanConfig, bounds chan<- uint64)
	close() error
}

// URL is the connection string other processes reach this store at: the
// external server's, or the embedded server's gRPC listener.
func (s *Store) URL() string { return s.url }

// Close closes the connection and, for an embedded store, the server.
func (s *Store) Close() error { return s.b.close() }

// Append appends events to stream if exp holds, and returns where the last
// one landed once it is durable. An empty append changes nothing and
// returns the stream's revision (0 for no stream) and the store's position
// at the time (its durable head), as EventStoreDB does. Errors:
// ErrWrongExpectedRevision (wrapped with the details), ErrStreamDeleted,
// ErrAppendTooLarge, ErrUnavailable.
func (s *Store) Append(ctx context.Context, stream string, exp Expected, events ...EventData) (AppendResult, error) {
	return s.b.appendEvents(ctx, stream, exp, events)
}

// ReadStream calls fn for every event of stream from revision from on, in
// order. Errors: ErrStreamNotFound, ErrStreamDeleted, ErrUnavailable, or fn's error.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, fn func(RecordedEvent) error) error {
	return s.b.readStream(ctx, stream, from, false, false, 0, fn)
}

// ReadStreamBackwards calls fn for up to count events of stream from its end
// backwards. Errors as ReadStream.
func (s *Store) ReadStreamBackwards(ctx context.Context, stream string, count uint64, fn func(RecordedEvent) error) error {
	if count == 0 {
		return nil
	}
	return s.b.readStream(ctx, stream, 0, true, true, count, fn)
}

// Delete soft-deletes stream: reads find nothing, and a later append
// continues after its last revision. It returns the $all position of the
// metadata record it writes. Errors: ErrWrongExpectedRevision (also for a
// stream that never existed), ErrStreamDeleted, ErrUnavailable.
func (s *Store) Delete(ctx context.Context, stream string, exp Expected) (uint64, error) {
	return s.b.deleteStream(ctx, stream, exp, false)
}

// Tombstone deletes stream for good: reading or appending to it fails with
// ErrStreamDeleted from then on. It returns the $all position of the
// tombstone. Errors: ErrWrongExpectedRevision, ErrStreamDeleted, ErrUnavailable.
func (s *Store) Tombstone(ctx context.Context, stream string, exp Expected) (uint64, error) {
	return s.b.deleteStream(ctx, stream, exp, true)
}

// Head is the $all position of the last durable record (system records
// included), 0 for an empty store. Errors: ErrUnavailable.
func (s *Store) Head(ctx context.Context) (uint64, error) { return s.b.head(ctx) }

// ReadAll calls fn for every user event of $all from position from
// (inclusive) on, in order; system events ("$"-typed) are skipped and
// filter applies. Events appended during the read may or may not be
// delivered. ScanAll does the same with several reads at once. Errors:
// ErrUnavailable or fn's error.
func (s *Store) ReadAll(ctx context.Context, from uint64, filter Filter, fn func(RecordedEvent) error) error {
	match, err := filter.matcher()
	if err != nil {
		return err
	}
	return s.b.readAll(ctx, from, 0, readPage, userEvents(match, fn))
}

// userEvents passes on to fn the events that are not system events and
// that match.
func userEvents(match func(stream, eventType string) bool, fn func(RecordedEvent) error) func(RecordedEvent) error {
	return func(e RecordedEvent) error {
		if isSystemType(e.Type) || !match(e.Stream, e.Type) {
			return nil
		}
		return fn(e)
	}
}

func isSystemType(t string) bool { return len(t) > 0 && t[0] == '$' }
