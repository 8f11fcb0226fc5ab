package eventstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// EmbeddedConfig configures the embedded event store.
type EmbeddedConfig struct {
	DataDir string
	// Listen is where the embedded server serves the EventStoreDB gRPC
	// protocol for other processes (default 127.0.0.1:0).
	Listen        string
	MaxAppendSize int // bytes of data and metadata per append; default esdbserver.DefaultMaxAppendSize
	Logger        *slog.Logger
	// OnCommit observes every group commit of the storage's writer (for
	// metrics); it runs on the writer's goroutine and must be quick.
	OnCommit func(Commit)
	// Security of the gRPC listener (see esdbserver.Config): TLS, the CA
	// file its URL names, credentials, and whether it may listen beyond
	// loopback without them. The in-process calls need none.
	TLS       *tls.Config
	TLSCAFile string
	Auth      *esdbserver.Auth
	Insecure  bool
}

// Commit describes one group commit of the embedded store.
type Commit = storage.Commit

// OpenEmbedded opens the embedded event store in cfg.DataDir and returns a
// Store that calls its storage directly, in this process: no gRPC, no
// protobuf, no loopback. The embedded server also serves the EventStoreDB
// gRPC protocol on cfg.Listen, so the replay CLI and other services reach
// the same store through the official client at URL(); every write, from
// here or from there, goes through the storage's one writer, which orders
// them all by their expected revisions. Close stops both.
func OpenEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Store, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.MaxAppendSize <= 0 {
		cfg.MaxAppendSize = esdbserver.DefaultMaxAppendSize
	}
	srv, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: cfg.DataDir, Listen: cfg.Listen,
		MaxAppendSize: cfg.MaxAppendSize, Logger: cfg.Logger, OnCommit: cfg.OnCommit,
		TLS: cfg.TLS, TLSCAFile: cfg.TLSCAFile, Auth: cfg.Auth, Insecure: cfg.Insecure})
	if err != nil {
		return nil, err
	}
	return &Store{b: &localBackend{st: srv.Storage(), srv: srv, maxAppend: cfg.MaxAppendSize}, url: srv.URL()}, nil
}

// localBackend is the embedded store's storage, called in-process.
type localBackend struct {
	st        *storage.Store
	srv       *esdbserver.Server
	maxAppend int
}

// readPage is how many records one read of $all visits: through the
// client, the count of one ReadAll call; in-process, it bounds how long a
// slow caller pins one engine iterator (and the memory it holds).
const readPage = 4096

func (l *localBackend) appendEvents(ctx context.Context, stream string, exp Expected, events []EventData) (AppendResult, error) {
	size := 0
	for i := range events {
		size += len(events[i].Data) + len(events[i].Metadata)
	}
	if size > l.maxAppend {
		return AppendResult{}, fmt.Errorf("append to %s: %w: %d bytes of data and metadata, at most %d", stream, ErrAppendTooLarge, size, l.maxAppend)
	}
	res, err := l.st.Append(ctx, stream, storageExpected(exp), proposed(events, size))
	if err != nil {
		return AppendResult{}, localError(ctx, "append to "+stream, err)
	}
	if res.NoPosition {
		// An append without events writes nothing; like the gRPC server
		// (and EventStoreDB), it answers with the position it stands at.
		res.Position = l.st.Head()
	}
	return AppendResult{Revision: uint64(res.Revision), Position: uint64(res.Position)}, nil
}

// proposed converts events for the storage. Their data and metadata are
// copied (into one allocation): the storage keeps and publishes what it is
// given, and a caller may reuse its buffers once Append returns, as it may
// with the gRPC client. A nil ID gets a random one, as the client gives it.
func proposed(events []EventData, size int) []storage.ProposedEvent {
	buf := make([]byte, 0, size)
	out := make([]storage.ProposedEvent, len(events))
	for i, e := range events {
		id := e.ID
		if id == uuid.Nil {
			id = uuid.New()
		}
		start := len(buf)
		buf = append(buf, e.Data...)
		data := buf[start:len(buf):len(buf)]
		start = len(buf)
		buf = append(buf, e.Metadata...)
		meta := buf[start:len(buf):len(buf)]
		out[i] = storage.ProposedEvent{ID: id, Type: e.Type, IsJSON: true, Data: nilIfEmpty(data), CustomMetadata: nilIfEmpty(meta)}
	}
	return out
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func storageExpected(e Expected) storage.Expected {
	switch e.kind {
	case expectNoStream:
		return storage.Expected{Kind: storage.ExpectNoStream}
	case expectStreamExists:
		return storage.Expected{Kind: storage.ExpectStreamExists}
	case expectRevision:
		return storage.Expected{Kind: storage.ExpectRevision, Revision: storage.Revision(e.rev)}
	}
	return storage.Expected{Kind: storage.ExpectAny}
}

func (l *localBackend) readStream(ctx context.Context, stream string, from uint64, fromEnd, backwards bool, count uint64, fn func(RecordedEvent) error) error {
	dir := storage.Forwards
	if backwards {
		dir = storage.Backwards
	}
	var fnErr error
	err := l.st.ReadStream(ctx, stream, storage.Revision(from), fromEnd, dir, count, func(r storage.Record) error {
		fnErr = fn(recordedFrom(r))
		return fnErr
	})
	if err != nil && err == fnErr {
		return err
	}
	if err != nil {
		return localError(ctx, "read "+stream, err)
	}
	return nil
}

func (l *localBackend) readAll(ctx context.Context, from, to, page uint64, fn func(RecordedEvent) error) error {
	pos := from
	for {
		n := 0
		var fnErr error
		done := false
		err := l.st.ReadAll(ctx, storage.Position(pos), false, storage.Forwards, page, storage.Filter{}, func(r storage.Record) error {
			if to != 0 && uint64(r.Position) >= to {
				done = true
				return errEndOfRange
			}
			n++
			pos = uint64(r.Position) + 1
			fnErr = fn(recordedFrom(r))
			return fnErr
		})
		switch {
		case done:
			return nil
		case err != nil && err == fnErr:
			return err
		case err != nil:
			return localError(ctx, fmt.Sprintf("read $all from %d", pos), err)
		case uint64(n) < page:
			return nil
		}
	}
}

// errEndOfRange ends a storage read at the end of the range asked for.
var errEndOfRange = errors.New("end of range")

func (l *localBackend) head(ctx context.Context) (uint64, error) {
	// A read from the end visits nothing, but reports a closed store or
	// an ended ctx.
	if err := l.st.ReadAll(ctx, 0, true, storage.Forwards, 1, storage.Filter{}, func(storage.Record) error { return nil }); err != nil {
		return 0, localError(ctx, "read $all head", err)
	}
	return uint64(l.st.Head()), nil
}

func (l *localBackend) deleteStream(ctx context.Context, stream string, exp Expected, tombstone bool) (uint64, error) {
	del, what := l.st.Delete, "delete "
	if tombstone {
		del, what = l.st.Tombstone, "tombstone "
	}
	pos, err := del(ctx, stream, storageExpected(exp))
	if err != nil {
		return 0, localError(ctx, what+stream, err)
	}
	return uint64(pos), nil
}

func (l *localBackend) subscribeAll(ctx context.Context, opts SubscribeOptions) (subscription, error) {
	o := storage.SubscribeAllOptions{From: storage.Position(opts.From), FromStart: opts.FromStart, Filter: storageFilter(opts.Filter)}
	if !opts.Filter.isZero() {
		// Checkpoints come with a filter only, as from EventStoreDB.
		o.CheckpointInterval = opts.CheckpointInterval
		if o.CheckpointInterval <= 0 {
			o.CheckpointInterval = defaultCheckpointInterval
		}
	}
	sub, err := l.st.SubscribeAll(ctx, o)
	if err != nil {
		return nil, localError(ctx, "subscribe to $all", err)
	}
	return localSubscription{sub}, nil
}

func storageFilter(f Filter) storage.Filter {
	return storage.Filter{StreamPrefixes: f.StreamPrefixes, StreamRegex: f.StreamRegex,
		TypePrefixes: f.EventTypePrefixes, TypeRegex: f.EventTypeRegex}
}

type localSubscription struct{ sub *storage.Subscription }

func (s localSubscription) next(ctx context.Context) (SubscriptionMessage, error) {
	for {
		m, err := s.sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return SubscriptionMessage{}, ctx.Err()
			}
			return SubscriptionMessage{}, localError(ctx, "subscription dropped", err)
		}
		switch m.Kind {
		case storage.MessageRecord:
			e := recordedFrom(m.Record)
			return SubscriptionMessage{Event: &e}, nil
		case storage.MessageCheckpoint:
			return SubscriptionMessage{Checkpoint: uint64(m.Checkpoint)}, nil
		case storage.MessageCaughtUp:
			return SubscriptionMessage{CaughtUp: true}, nil
		}
	}
}

func (s localSubscription) close() { s.sub.Close() }

func (l *localBackend) scanBounds(ctx context.Context, start, head uint64, cfg scanConfig, bounds chan<- uint64) {
	spacedBounds(ctx, start, head, uint64(cfg.window*cfg.interval), bounds)
}

func (l *localBackend) close() error { return l.srv.Close() }

// recordedFrom converts a stored record. Created keeps the 100 ns
// resolution EventStoreDB's wire format has, so both implementations of
// the port return the same times.
func recordedFrom(r storage.Record) RecordedEvent {
	return RecordedEvent{Stream: r.Stream, Revision: uint64(r.Revision), Position: uint64(r.Position), ID: uuid.UUID(r.ID),
		Type: r.Type, Data: r.Data, Metadata: r.CustomMetadata, Created: time.Unix(0, r.Created.UnixNano()/100*100).UTC()}
}

// localError translates a storage error into this package's sentinels,
// with what was being done.
func localError(ctx context.Context, what string, err error) error {
	var wev *storage.WrongExpectedVersionError
	switch {
	case errors.As(err, &wev):
		return fmt.Errorf("%s: %w: %v", what, ErrWrongExpectedRevision, err)
	case errors.Is(err, storage.ErrStreamDeleted):
		return fmt.Errorf("%s: %w: %v", what, ErrStreamDeleted, err)
	case errors.Is(err, storage.ErrStreamNotFound):
		return fmt.Errorf("%s: %w", what, ErrStreamNotFound)
	case errors.Is(err, storage.ErrClosed):
		return fmt.Errorf("%s: %w: the embedded event store is closed", what, ErrUnavailable)
	case errors.Is(err, storage.ErrDiskFull):
		return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
	}
	return ctxError(ctx, what, err)
}

// ctxError is err with what was being done; when err is ctx's deadline it
// also wraps ErrUnavailable (the store did not answer in time), as a
// timeout does through the gRPC client.
func ctxError(ctx context.Context, what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, context.DeadlineExceeded)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return fmt.Errorf("%s: %w", what, err)
}
