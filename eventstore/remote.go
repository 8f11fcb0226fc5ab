package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ConnectOption adjusts Connect.
type ConnectOption func(*connectConfig)

type connectConfig struct{ log *slog.Logger }

// WithLogger logs the connection's outages: when the store stops
// answering, once every few seconds while it does not, and when it is
// back. Errors of single operations are returned, never logged.
func WithLogger(log *slog.Logger) ConnectOption {
	return func(c *connectConfig) {
		if log != nil {
			c.log = log
		}
	}
}

// Connect connects to the event store at url (esdb://, esdb+discover://)
// through the official client over gRPC, and checks it answers, so a wrong
// URL fails here with a clear error. Later outages of any length are
// survived: operations fail with ErrUnavailable while the store does not
// answer and work again, by themselves, within a second of its return.
func Connect(ctx context.Context, url string, opts ...ConnectOption) (*Store, error) {
	cc := connectConfig{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cc)
	}
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return nil, fmt.Errorf("event store URL %q: %w", url, err)
	}
	cfg.Logger = esdb.NoopLogging()
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("event store client for %q: %w", url, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The first call is alone in the client: if it fails, nothing else can
	// be blocked inside, and closing it is safe.
	if err := ping(pctx, client); err != nil {
		client.Close()
		return nil, fmt.Errorf("event store at %s does not answer (is it running? for a local server without TLS add ?tls=false): %w", url, err)
	}
	return &Store{b: &remoteBackend{link: newLink(url, *cfg, client, cc.log)}, url: url}, nil
}

// remoteBackend reaches a store through the official client over gRPC.
type remoteBackend struct{ link *link }

func (r *remoteBackend) appendEvents(ctx context.Context, stream string, exp Expected, events []EventData) (AppendResult, error) {
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: e.Metadata}
	}
	res, err := call(ctx, r.link, func(ctx context.Context, c *esdb.Client) (*esdb.WriteResult, error) {
		return c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdbExpected(exp)}, data...)
	}, nil)
	if err != nil {
		return AppendResult{}, remoteError(ctx, "append to "+stream, err)
	}
	out := AppendResult{Revision: res.NextExpectedVersion, Position: res.CommitPosition}
	if len(events) == 0 {
		// The client reports a stream without events as revision 1 when the
		// answer carries a position (esdb/client.go), which it does for an
		// empty append; the stream's last event says what its revision is.
		out.Revision = 0
		err := r.readStream(ctx, stream, 0, true, true, 1, func(e RecordedEvent) error { out.Revision = e.Revision; return nil })
		if err != nil && !errors.Is(err, ErrStreamNotFound) {
			return AppendResult{}, err
		}
	}
	return out, nil
}

func esdbExpected(e Expected) esdb.ExpectedRevision {
	switch e.kind {
	case expectNoStream:
		return esdb.NoStream{}
	case expectStreamExists:
		return esdb.StreamExists{}
	case expectRevision:
		return esdb.Revision(e.rev)
	}
	return esdb.Any{}
}

func (r *remoteBackend) readStream(ctx context.Context, stream string, from uint64, fromEnd, backwards bool, count uint64, fn func(RecordedEvent) error) error {
	o := esdb.ReadStreamOptions{From: esdb.Revision(from), Direction: esdb.Forwards}
	if fromEnd {
		o.From = esdb.End{}
	}
	if backwards {
		o.Direction = esdb.Backwards
	}
	if count == 0 {
		count = ^uint64(0)
	}
	return r.read(ctx, "read "+stream, func(ctx context.Context, c *esdb.Client, emit func(*esdb.RecordedEvent) error) error {
		rs, err := c.ReadStream(ctx, stream, o, count)
		if err != nil {
			return err
		}
		defer rs.Close()
		return recvAll(rs, emit)
	}, fn)
}

func (r *remoteBackend) readAll(ctx context.Context, from, to, page uint64, fn func(RecordedEvent) error) error {
	return r.read(ctx, fmt.Sprintf("read $all from %d", from), func(ctx context.Context, c *esdb.Client, emit func(*esdb.RecordedEvent) error) error {
		return readAllPages(ctx, c, from, to, page, emit)
	}, fn)
}

func (r *remoteBackend) head(ctx context.Context) (uint64, error) {
	var head uint64
	err := r.read(ctx, "read $all head", func(ctx context.Context, c *esdb.Client, emit func(*esdb.RecordedEvent) error) error {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1)
		if err != nil {
			return err
		}
		defer rs.Close()
		return recvAll(rs, emit)
	}, func(e RecordedEvent) error { head = e.Position; return nil })
	return head, err
}

func (r *remoteBackend) deleteStream(ctx context.Context, stream string, exp Expected, tombstone bool) (uint64, error) {
	what := "delete " + stream
	if tombstone {
		what = "tombstone " + stream
	}
	res, err := call(ctx, r.link, func(ctx context.Context, c *esdb.Client) (*esdb.DeleteResult, error) {
		if tombstone {
			return c.TombstoneStream(ctx, stream, esdb.TombstoneStreamOptions{ExpectedRevision: esdbExpected(exp)})
		}
		return c.DeleteStream(ctx, stream, esdb.DeleteStreamOptions{ExpectedRevision: esdbExpected(exp)})
	}, nil)
	if err != nil {
		return 0, remoteError(ctx, what, err)
	}
	return res.Position.Commit, nil
}

func (r *remoteBackend) close() error {
	r.link.close()
	return nil
}

// read runs a client read on its own goroutine (see call), which hands the
// events over in batches; fn runs on the caller's goroutine. fn's error
// ends the read and is returned as it is.
func (r *remoteBackend) read(ctx context.Context, what string, read func(ctx context.Context, c *esdb.Client, emit func(*esdb.RecordedEvent) error) error, fn func(RecordedEvent) error) error {
	const batchSize = 64
	type batch struct{ events []RecordedEvent }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the read if fn fails
	batches := make(chan batch, 4)
	readErr := make(chan error, 1)
	go func() {
		_, err := call(ctx, r.link, func(ctx context.Context, c *esdb.Client) (struct{}, error) {
			buf := make([]RecordedEvent, 0, batchSize)
			send := func(b batch) error {
				select {
				case batches <- b:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			err := read(ctx, c, func(e *esdb.RecordedEvent) error {
				if buf = append(buf, recorded(e)); len(buf) == batchSize {
					if err := send(batch{events: buf}); err != nil {
						return err
					}
					buf = make([]RecordedEvent, 0, batchSize)
				}
				return nil
			})
			if len(buf) > 0 && err == nil {
				err = send(batch{events: buf})
			}
			return struct{}{}, err
		}, nil)
		readErr <- err
	}()
	deliver := func(b batch) error {
		for _, e := range b.events {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		select {
		case b := <-batches:
			if err := deliver(b); err != nil {
				return err
			}
		case err := <-readErr:
			// A read that ended by itself sent every batch before.
			for len(batches) > 0 {
				if err := deliver(<-batches); err != nil {
					return err
				}
			}
			if err != nil {
				return remoteError(ctx, what, err)
			}
			return nil
		}
	}
}

// recvAll calls emit for every event of a read.
func recvAll(rs *esdb.ReadStream, emit func(*esdb.RecordedEvent) error) error {
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := emit(ev.Event); err != nil {
			return err
		}
	}
}

// readAllPages calls emit for every record of $all with a position in
// [from, to) (to 0: to the end of the log), system records included, in
// $all reads of up to page records each (a server may limit a read's
// count). A read after the first starts at the last record read, which an
// EventStoreDB server accepts as a position (a position inside a record it
// refuses), and skips it.
func readAllPages(ctx context.Context, c *esdb.Client, from, to, page uint64, emit func(*esdb.RecordedEvent) error) error {
	pos, skip := from, false
	for {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Position{Commit: pos, Prepare: pos}, Direction: esdb.Forwards}, page)
		if err != nil {
			return err
		}
		n, done := uint64(0), false
		for !done {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return err
			}
			n++
			p := ev.Event.Position.Commit
			switch {
			case skip && p <= pos:
				continue // the record this read starts at, read by the one before
			case to != 0 && p >= to:
				done = true // the first record of the next range
				continue
			}
			pos, skip = p, true
			if err := emit(ev.Event); err != nil {
				rs.Close()
				return err
			}
		}
		rs.Close()
		if done || n < page {
			return nil
		}
	}
}

func recorded(e *esdb.RecordedEvent) RecordedEvent {
	return RecordedEvent{Stream: e.StreamID, Revision: e.EventNumber, Position: e.Position.Commit, ID: e.EventID,
		Type: e.EventType, Data: e.Data, Metadata: e.UserMetadata, Created: e.CreatedDate}
}

// remoteError translates client and gRPC errors into this package's
// sentinels, with what was being done. It uses errors.As: esdb.FromError's
// type assertion misses wrapped errors, and the client returns some read
// errors unwrapped as gRPC statuses.
func remoteError(ctx context.Context, what string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var ee *esdb.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("%s: %w: %v", what, ErrWrongExpectedRevision, ee)
		case esdb.ErrorCodeResourceNotFound:
			return fmt.Errorf("%s: %w: %v", what, ErrStreamNotFound, ee)
		case esdb.ErrorCodeStreamDeleted:
			return fmt.Errorf("%s: %w: %v", what, ErrStreamDeleted, ee)
		case esdb.ErrorCodeConnectionClosed, esdb.ErrorUnavailable:
			return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, ee)
		case esdb.ErrorCodeDeadlineExceeded:
			return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, context.DeadlineExceeded)
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "maximum append size"):
		return fmt.Errorf("%s: %w: %v", what, ErrAppendTooLarge, err)
	case wrongExpectedVersionStatus(err):
		// A delete's or tombstone's conflict comes as a status, not a
		// result: the client maps it to no code of its own.
		return fmt.Errorf("%s: %w: %v", what, ErrWrongExpectedRevision, err)
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return ctxError(ctx, what, err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if st, ok := status.FromError(e); ok {
			switch st.Code() {
			case codes.Unavailable, codes.ResourceExhausted: // ResourceExhausted: the embedded store's disk is full
				return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
			case codes.DeadlineExceeded:
				return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, context.DeadlineExceeded)
			}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func wrongExpectedVersionStatus(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if st, ok := status.FromError(e); ok && st.Code() == codes.FailedPrecondition {
			m := strings.ToLower(st.Message())
			return strings.Contains(m, "wrong expected version") || strings.Contains(m, "wrongexpectedversion")
		}
	}
	return false
}
