// Package eventstore is Ordo's adapter to EventStoreDB: the small set of
// operations the application needs, over the official client
// (github.com/EventStore/EventStore-Client-Go/v4), with infrastructure errors
// translated into this package's sentinels. The same code talks to the
// embedded server (package esdbserver) and to an EventStoreDB or KurrentDB
// cluster; only the connection string differs.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordo-dev/ordo/eventstore/esdbserver"
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
	// ErrUnavailable: the event store cannot be reached or is shutting down;
	// the operation may succeed later.
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
	Created  time.Time
}

// Expected is an append's expectation of the stream's revision.
type Expected struct{ rev esdb.ExpectedRevision }

// Any appends whatever the stream's revision.
func Any() Expected { return Expected{esdb.Any{}} }

// NoStream appends only if the stream does not exist yet.
func NoStream() Expected { return Expected{esdb.NoStream{}} }

// StreamExists appends only if the stream exists.
func StreamExists() Expected { return Expected{esdb.StreamExists{}} }

// Exact appends only if the stream's last revision is rev.
func Exact(rev uint64) Expected { return Expected{esdb.Revision(rev)} }

// AppendResult is where an append's last event landed.
type AppendResult struct {
	Revision uint64 // stream revision of the last event
	Position uint64 // $all commit position of the last event
}

// Store is a connection to an event store.
type Store struct {
	client   *esdb.Client
	url      string
	embedded *esdbserver.Server // nil when connected to an external server
}

// Connect connects to the event store at url (esdb://, esdb+discover://)
// and checks it answers, so a wrong URL fails here with a clear error.
func Connect(ctx context.Context, url string) (*Store, error) {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("event store URL %q: %w", url, err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("event store client for %q: %w", url, err)
	}
	s := &Store{client: client, url: url}
	if err := s.ping(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("event store at %s does not answer (is it running? for a local server without TLS add ?tls=false): %w", url, err)
	}
	return s, nil
}

// EmbeddedConfig configures the embedded event store.
type EmbeddedConfig struct {
	DataDir       string
	Listen        string // default 127.0.0.1:0
	MaxAppendSize int
	Logger        *slog.Logger
}

// OpenEmbedded starts the embedded EventStoreDB-compatible server on
// loopback and connects to it through the official client. Close stops both.
func OpenEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Store, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	srv, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: cfg.DataDir, Listen: cfg.Listen,
		MaxAppendSize: cfg.MaxAppendSize, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	s, err := Connect(ctx, srv.URL())
	if err != nil {
		srv.Close()
		return nil, err
	}
	s.embedded = srv
	return s, nil
}

// URL is the connection string in use.
func (s *Store) URL() string { return s.url }

// Client is the underlying official client, for tools that need the full
// EventStoreDB API (metadata, deletes).
func (s *Store) Client() *esdb.Client { return s.client }

// Close closes the connection and, for an embedded store, the server.
func (s *Store) Close() error {
	err := s.client.Close()
	if s.embedded != nil {
		err = errors.Join(err, s.embedded.Close())
	}
	return err
}

// ping makes one cheap read so connection problems surface at once.
func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := s.Head(ctx)
	return err
}

// Append appends events to stream if exp holds, and returns where the last
// one landed once it is durable. Errors: ErrWrongExpectedRevision (wrapped
// with the details), ErrStreamDeleted, ErrAppendTooLarge, ErrUnavailable.
func (s *Store) Append(ctx context.Context, stream string, exp Expected, events ...EventData) (AppendResult, error) {
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: e.Metadata}
	}
	res, err := s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: exp.rev}, data...)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", stream, translate(err))
	}
	return AppendResult{Revision: res.NextExpectedVersion, Position: res.CommitPosition}, nil
}

// ReadStream calls fn for every event of stream from revision from on, in
// order. Errors: ErrStreamNotFound, ErrStreamDeleted, ErrUnavailable, or fn's error.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, fn func(RecordedEvent) error) error {
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Revision(from), Direction: esdb.Forwards}, ^uint64(0))
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, translate(err))
	}
	defer rs.Close()
	return drain(rs, stream, fn)
}

// ReadStreamBackwards calls fn for up to count events of stream from its end
// backwards.
func (s *Store) ReadStreamBackwards(ctx context.Context, stream string, count uint64, fn func(RecordedEvent) error) error {
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, count)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, translate(err))
	}
	defer rs.Close()
	return drain(rs, stream, fn)
}

func drain(rs *esdb.ReadStream, what string, fn func(RecordedEvent) error) error {
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", what, translate(err))
		}
		if err := fn(recorded(ev.Event)); err != nil {
			return err
		}
	}
}

// Filter selects events by stream name or event type; at most one kind.
type Filter struct {
	StreamPrefixes    []string
	EventTypePrefixes []string
	StreamRegex       string
	EventTypeRegex    string
}

// matcher is the filter applied locally, with the server's semantics:
// prefixes match with HasPrefix, regexes are unanchored.
func (f Filter) matcher() (func(RecordedEvent) bool, error) {
	var re *regexp.Regexp
	if pat := f.StreamRegex + f.EventTypeRegex; pat != "" {
		var err error
		if re, err = regexp.Compile(pat); err != nil {
			return nil, fmt.Errorf("filter regex %q: %w", pat, err)
		}
	}
	return func(e RecordedEvent) bool {
		switch {
		case len(f.StreamPrefixes) > 0:
			return hasPrefix(e.Stream, f.StreamPrefixes)
		case f.StreamRegex != "":
			return re.MatchString(e.Stream)
		case len(f.EventTypePrefixes) > 0:
			return hasPrefix(e.Type, f.EventTypePrefixes)
		case f.EventTypeRegex != "":
			return re.MatchString(e.Type)
		}
		return true
	}, nil
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (f Filter) esdb() *esdb.SubscriptionFilter {
	switch {
	case len(f.StreamPrefixes) > 0:
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: f.StreamPrefixes}
	case f.StreamRegex != "":
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: f.StreamRegex}
	case len(f.EventTypePrefixes) > 0:
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: f.EventTypePrefixes}
	case f.EventTypeRegex != "":
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: f.EventTypeRegex}
	}
	return nil
}

// ReadAll calls fn for every user event of $all from position from
// (inclusive) on, in batches; system events ("$"-typed) are skipped. The
// client's $all reads carry no filter, so filter applies here. ScanAll does
// the same with several reads at once.
func (s *Store) ReadAll(ctx context.Context, from uint64, filter Filter, fn func(RecordedEvent) error) error {
	const batch = 4096
	match, err := filter.matcher()
	if err != nil {
		return err
	}
	start := esdb.Position{Commit: from, Prepare: from}
	return s.readAllPages(ctx, start, nil, batch, func(ev *esdb.RecordedEvent) error {
		if strings.HasPrefix(ev.EventType, "$") {
			return nil
		}
		e := recorded(ev)
		if !match(e) {
			return nil
		}
		return fn(e)
	})
}

// Head is the $all position of the last event, 0 for an empty store.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1)
	if err != nil {
		return 0, fmt.Errorf("read $all head: %w", translate(err))
	}
	defer rs.Close()
	var head uint64
	err = drain(rs, "$all", func(e RecordedEvent) error { head = e.Position; return nil })
	return head, err
}

func recorded(e *esdb.RecordedEvent) RecordedEvent {
	return RecordedEvent{Stream: e.StreamID, Revision: e.EventNumber, Position: e.Position.Commit, ID: e.EventID,
		Type: e.EventType, Data: e.Data, Metadata: e.UserMetadata, Created: e.CreatedDate}
}

// translate maps client and gRPC errors to this package's sentinels. It uses
// errors.As: esdb.FromError's type assertion misses wrapped errors, and the
// client returns some read errors unwrapped as gRPC statuses.
func translate(err error) error {
	var ee *esdb.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("%w: %v", ErrWrongExpectedRevision, ee)
		case esdb.ErrorCodeResourceNotFound:
			return fmt.Errorf("%w: %v", ErrStreamNotFound, ee)
		case esdb.ErrorCodeStreamDeleted:
			return fmt.Errorf("%w: %v", ErrStreamDeleted, ee)
		case esdb.ErrorCodeConnectionClosed, esdb.ErrorCodeDeadlineExceeded:
			return fmt.Errorf("%w: %v", ErrUnavailable, ee)
		}
		if inner := ee.Unwrap(); inner != nil {
			err = inner
		}
	}
	switch st, _ := status.FromError(errors.Unwrap(err)); {
	case err != nil && strings.Contains(err.Error(), "maximum append size"):
		return fmt.Errorf("%w: %v", ErrAppendTooLarge, err)
	case st != nil && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded || st.Code() == codes.ResourceExhausted):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if st, ok := status.FromError(err); ok && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded || st.Code() == codes.ResourceExhausted) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}
