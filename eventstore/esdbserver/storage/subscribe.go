package storage

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// MessageKind says what a subscription message carries.
type MessageKind uint8

// Subscription message kinds.
const (
	MessageRecord     MessageKind = iota + 1 // a record
	MessageCaughtUp                          // catch-up reached the live head
	MessageCheckpoint                        // a position it is safe to resume after
)

// Message is one item of a subscription.
type Message struct {
	Kind       MessageKind
	Record     Record
	Checkpoint Position
}

// SubscribeAllOptions say where an $all subscription starts and what it
// delivers. From is exclusive; FromStart delivers everything; FromEnd only
// what is committed after the call.
type SubscribeAllOptions struct {
	From      Position
	FromStart bool
	FromEnd   bool
	Filter    Filter
	// CheckpointInterval > 0 emits a checkpoint after that many considered
	// records (matching or not), once at the end of each catch-up, and so on
	// while live, as EventStoreDB does for filtered subscriptions.
	CheckpointInterval int
}

// SubscribeStreamOptions say where a stream subscription starts. From is
// an exclusive revision.
type SubscribeStreamOptions struct {
	From      Revision
	FromStart bool
	FromEnd   bool
}

// Subscription delivers records in position order, each exactly once: it
// reads from disk until it reaches the head, then takes records from the
// writer live. A subscriber that falls too far behind is dropped by the
// writer and silently goes back to reading from disk where it left off, so a
// slow reader costs disk reads, never writer time or unbounded memory.
type Subscription struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc

	stream string // "" for $all
	match  func(stream, eventType string) bool
	every  int

	last       Position // every record up to here has been considered
	lastRev    int64    // stream subscriptions: last revision delivered
	considered int
	live       chan []Record // nil while catching up
	queue      []Message
	err        error // terminal
}

// SubscribeAll subscribes to the global log.
func (s *Store) SubscribeAll(ctx context.Context, opts SubscribeAllOptions) (*Subscription, error) {
	if err := s.checkContext(ctx); err != nil {
		return nil, err
	}
	match, err := opts.Filter.compile()
	if err != nil {
		return nil, err
	}
	sub := s.newSubscription(ctx, "", match)
	sub.every = opts.CheckpointInterval
	switch {
	case opts.FromEnd:
		sub.last = s.Head()
	case opts.FromStart:
		sub.last = 0
	default:
		sub.last = opts.From
	}
	return sub, nil
}

// SubscribeStream subscribes to one stream. When the stream is tombstoned
// the subscription delivers the $streamDeleted record and then ends with an
// error wrapping ErrStreamDeleted.
func (s *Store) SubscribeStream(ctx context.Context, stream string, opts SubscribeStreamOptions) (*Subscription, error) {
	if err := s.checkContext(ctx); err != nil {
		return nil, err
	}
	sub := s.newSubscription(ctx, stream, func(s, _ string) bool { return s == stream })
	sub.lastRev = -1
	switch {
	case opts.FromEnd:
		sub.last = s.Head()
		st, err := s.loadState(stream, sub.last)
		if err != nil {
			return nil, err
		}
		sub.lastRev = st.last
	case !opts.FromStart:
		// A revision at or above 2^63 is after every event a stream can
		// hold: nothing but a tombstone follows it. Converted as it is, it
		// would wrap to a negative revision and start from the beginning.
		sub.lastRev = int64(min(opts.From, Revision(math.MaxInt64)))
	}
	return sub, nil
}

func (s *Store) newSubscription(ctx context.Context, stream string, match func(stream, eventType string) bool) *Subscription {
	ctx, cancel := context.WithCancel(ctx)
	return &Subscription{s: s, ctx: ctx, cancel: cancel, stream: stream, match: match}
}

// Close ends the subscription.
func (sub *Subscription) Close() {
	sub.cancel()
	sub.s.subsMu.Lock()
	if ch, ok := sub.s.subs[sub]; ok {
		close(ch)
		delete(sub.s.subs, sub)
	}
	sub.s.subsMu.Unlock()
}

// Next returns the next message. Errors: ctx's error, ErrClosed when the
// store or the subscription was closed, or an error wrapping
// ErrStreamDeleted after a stream subscription delivered a tombstone.
func (sub *Subscription) Next(ctx context.Context) (Message, error) {
	for {
		if len(sub.queue) > 0 {
			m := sub.queue[0]
			sub.queue = sub.queue[1:]
			return m, nil
		}
		if sub.err != nil {
			return Message{}, sub.err
		}
		if err := sub.checkDone(ctx); err != nil {
			return Message{}, err
		}
		if sub.live == nil {
			if err := sub.catchUp(); err != nil {
				return Message{}, err
			}
			continue
		}
		select {
		case recs, ok := <-sub.live:
			if !ok {
				sub.live = nil // dropped by the writer (or closed): read from disk again
				continue
			}
			for i := range recs {
				if recs[i].Position > sub.last {
					sub.consider(recs[i], false)
				}
			}
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-sub.ctx.Done():
			return Message{}, ErrClosed
		case <-sub.s.closing:
			return Message{}, ErrClosed
		}
	}
}

func (sub *Subscription) checkDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sub.ctx.Err() != nil || sub.s.isClosed() {
		return ErrClosed
	}
	return nil
}

// catchUp reads one chunk from disk; when nothing is left up to the head it
// registers for live delivery. Registration happens under the lock the
// writer publishes under, and only if the head has not moved since the last
// read, so no record falls between disk and live.
func (sub *Subscription) catchUp() error {
	const chunk = 512
	head := sub.s.Head()
	n, err := sub.readChunk(head, chunk)
	if err != nil {
		return err
	}
	if n == chunk || sub.err != nil {
		return nil
	}
	sub.s.subsMu.Lock()
	if sub.s.isClosed() {
		sub.s.subsMu.Unlock()
		return ErrClosed
	}
	if sub.s.Head() != head {
		sub.s.subsMu.Unlock()
		return nil // more arrived meanwhile; read again
	}
	ch := make(chan []Record, sub.s.opts.SubscriptionBuffer)
	sub.s.subs[sub] = ch
	sub.live = ch
	sub.s.subsMu.Unlock()
	if head > sub.last {
		sub.last = head
	}
	if sub.every > 0 {
		sub.queue = append(sub.queue, Message{Kind: MessageCheckpoint, Checkpoint: sub.last})
		sub.considered = 0
	}
	sub.queue = append(sub.queue, Message{Kind: MessageCaughtUp})
	return nil
}

// readChunk reads up to n records after the subscription's place, up to
// head, and queues them. It returns how many it read.
func (sub *Subscription) readChunk(head Position, n int) (int, error) {
	read := 0
	if sub.stream != "" {
		err := sub.s.ReadStream(sub.ctx, sub.stream, nextRevision(sub.lastRev), false, Forwards, 0, func(r Record) error {
			if r.Position > head {
				return errStop
			}
			sub.consider(r, true)
			if read++; read >= n {
				return errStop
			}
			return nil
		})
		switch {
		case err == nil, isStop(err), isNotFound(err):
		case isDeleted(err):
			return read, sub.readTombstone(head)
		default:
			return read, sub.wrapCtx(err)
		}
		return read, nil
	}
	if sub.last >= head {
		return 0, nil
	}
	err := sub.s.scan(sub.ctx, sub.last+1, head, Forwards, func(r Record) error {
		sub.consider(r, true)
		if read++; read >= n {
			return errStop
		}
		return nil
	})
	return read, sub.wrapCtx(err)
}

// readTombstone delivers the $streamDeleted record of a tombstoned stream.
func (sub *Subscription) readTombstone(head Position) error {
	r, err := sub.s.recordAt(sub.stream, TombstoneRevision)
	if errors.Is(err, pebble.ErrNotFound) {
		// A metastream is deleted with its stream and has no tombstone
		// record of its own: the subscription just ends.
		sub.err = fmt.Errorf("stream %q: %w", sub.stream, ErrStreamDeleted)
		return nil
	}
	if err != nil {
		return err
	}
	if r.Position <= head {
		sub.consider(r, true)
	}
	return nil
}

func (sub *Subscription) wrapCtx(err error) error {
	if err != nil && sub.ctx.Err() != nil {
		return ErrClosed
	}
	return err
}

// consider handles one record in position order: deliver it if it matches,
// count it towards checkpoints, and end a stream subscription at its tombstone.
func (sub *Subscription) consider(r Record, catchingUp bool) {
	if r.Position > sub.last {
		sub.last = r.Position
	}
	if sub.match(r.Stream, r.Type) {
		if sub.stream != "" && r.Revision != TombstoneRevision && int64(r.Revision) <= sub.lastRev {
			return
		}
		sub.queue = append(sub.queue, Message{Kind: MessageRecord, Record: r})
		if sub.stream != "" {
			if r.Revision == TombstoneRevision {
				sub.err = fmt.Errorf("stream %q: %w", sub.stream, ErrStreamDeleted)
				return
			}
			sub.lastRev = int64(r.Revision)
		}
	}
	if sub.every > 0 && sub.stream == "" {
		if sub.considered++; sub.considered >= sub.every {
			sub.considered = 0
			sub.queue = append(sub.queue, Message{Kind: MessageCheckpoint, Checkpoint: r.Position})
		}
	}
	_ = catchingUp
}

// nextRevision is the revision after last (-1: none yet), computed without
// signed overflow: after the largest revision comes 2^63, beyond every event.
func nextRevision(last int64) Revision {
	if last < 0 {
		return 0
	}
	return Revision(last) + 1
}
