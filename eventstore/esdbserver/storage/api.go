// Package storage is the durable log behind the embedded EventStoreDB-compatible
// server: one totally ordered log of event records ($all), a per-stream index,
// stream state (revisions, soft delete, tombstone) and live subscriptions.
//
// It knows EventStoreDB's semantics (expected revisions, idempotent re-append,
// deletes) but nothing about gRPC; the esdbserver package maps it to the wire.
//
// This file is the contract between the storage engine and the gRPC layer.
package storage

import (
	"errors"
	"fmt"
	"time"
)

// Position is a record's place in the global log. Every record has
// Commit == Prepare == its own position; positions start at 1, strictly
// increase in commit order and stay below 2^63.
type Position uint64

// maxPosition is beyond every record: the writer's bound for its own reads.
const maxPosition Position = 1<<64 - 1

// Revision is an event's number within its stream: 0, 1, 2, …
type Revision uint64

// TombstoneRevision is the revision of the $streamDeleted record a tombstone
// writes (EventNumber.DeletedStream in EventStoreDB).
const TombstoneRevision Revision = 1<<63 - 1

// ExpectedKind says which expected-revision form an append or delete carries.
type ExpectedKind uint8

// The expected-revision forms of EventStoreDB.
const (
	ExpectAny          ExpectedKind = iota // no check
	ExpectNoStream                         // the stream must not exist
	ExpectStreamExists                     // the stream must exist
	ExpectRevision                         // the stream's last revision must equal Expected.Revision
)

// Expected is an append's or delete's concurrency expectation.
type Expected struct {
	Kind     ExpectedKind
	Revision Revision // only for ExpectRevision
}

// ProposedEvent is one event of an append request.
type ProposedEvent struct {
	ID             [16]byte // event UUID, big-endian as on the wire
	Type           string
	IsJSON         bool // content-type application/json (else application/octet-stream)
	Data           []byte
	CustomMetadata []byte
}

// Record is an event as stored and read back.
type Record struct {
	Position       Position
	Stream         string
	Revision       Revision
	ID             [16]byte
	Type           string
	IsJSON         bool
	Created        time.Time // server clock at commit; wire form is 100-ns ticks since the Unix epoch
	Data           []byte
	CustomMetadata []byte
}

// Commit describes one group commit of the writer, for Options.OnCommit.
type Commit struct {
	Appends  int           // writes (appends, deletes) in the group
	Events   int           // events committed
	Bytes    int           // bytes of event data and metadata committed
	Duration time.Duration // deciding, writing and syncing the group
	Failed   bool          // the commit failed; the group's writers got the error
}

// AppendResult reports a successful append.
//
// For an empty append to an existing stream, or an idempotent re-append, the
// result describes the stream's existing events exactly as EventStoreDB does.
type AppendResult struct {
	// NoStream is true when the stream still has no events (an empty append to
	// a new stream); then Revision and Position are zero.
	NoStream bool
	Revision Revision // revision of the last event of the append
	// NoPosition is true when there is no position to report (empty append).
	NoPosition bool
	Position   Position // position of the last event of the append
}

// WrongExpectedVersionError is returned when an append's or delete's
// expectation does not hold. Current describes the stream at decision time.
type WrongExpectedVersionError struct {
	Stream          string
	Expected        Expected
	CurrentNoStream bool     // the stream has no events (or never existed)
	Current         Revision // last revision when !CurrentNoStream
}

func (e *WrongExpectedVersionError) Error() string {
	cur := "no stream"
	if !e.CurrentNoStream {
		cur = fmt.Sprintf("revision %d", e.Current)
	}
	return fmt.Sprintf("wrong expected version on stream %q: current is %s", e.Stream, cur)
}

// Errors the store returns; callers branch on them with errors.Is.
var (
	// ErrStreamDeleted: the stream was tombstoned (or, for ExpectStreamExists,
	// soft-deleted). Wrap it with the stream name.
	ErrStreamDeleted = errors.New("stream deleted")
	// ErrStreamNotFound: a read of a stream that has no readable events
	// because it never existed or was soft-deleted.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// Direction of a read.
type Direction uint8

// Read directions.
const (
	Forwards Direction = iota
	Backwards
)

// Filter selects records for $all subscriptions and reads. The zero Filter
// matches everything. Exactly one of StreamPrefixes/StreamRegex/
// TypePrefixes/TypeRegex is set by the gRPC layer. Regexes use Go RE2 syntax
// (unanchored match), the documented difference from .NET.
type Filter struct {
	StreamPrefixes []string
	StreamRegex    string
	TypePrefixes   []string
	TypeRegex      string
}
