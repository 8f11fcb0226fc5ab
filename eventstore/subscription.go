package eventstore

import (
	"context"
	"sync"
)

// SubscribeOptions say where an $all subscription starts and what it gets.
type SubscribeOptions struct {
	From      uint64 // exclusive: events after this position
	FromStart bool   // from the very beginning (From is ignored)
	// Filter is applied by the store; with a filter the subscription also
	// delivers checkpoints. Without one it delivers every record, system
	// records included.
	Filter Filter
	// CheckpointInterval asks for a checkpoint every this many considered
	// events (with a filter only); 0 uses the server's default (32).
	CheckpointInterval int
}

// defaultCheckpointInterval is EventStoreDB's default search window, the
// checkpoint interval of a filtered subscription that asks for none.
const defaultCheckpointInterval = 32

// SubscriptionMessage is one item of a subscription: an event, a checkpoint
// position safe to resume after, or the news that catch-up reached live.
type SubscriptionMessage struct {
	Event      *RecordedEvent
	Checkpoint uint64
	CaughtUp   bool
}

// Subscription is a live $all subscription. Next and Close may be called
// from different goroutines; Next from one at a time.
type Subscription struct {
	s    subscription
	once sync.Once
}

// subscription is a backend's running subscription.
type subscription interface {
	// next blocks for the next message; ctx's end or close ends it.
	next(ctx context.Context) (SubscriptionMessage, error)
	close()
}

// SubscribeAll subscribes to $all from opts.From (exclusive) or the start.
// Errors: ErrUnavailable.
func (s *Store) SubscribeAll(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if _, err := opts.Filter.matcher(); err != nil {
		return nil, err
	}
	sub, err := s.b.subscribeAll(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Subscription{s: sub}, nil
}

// Next blocks for the next message. When ctx ends, the subscription is
// closed and Next returns ctx's error; when the store drops it (it shut
// down, the connection broke), Next returns an error wrapping
// ErrUnavailable: subscribe again after the last position seen.
func (sub *Subscription) Next(ctx context.Context) (SubscriptionMessage, error) {
	m, err := sub.s.next(ctx)
	if err != nil && ctx.Err() != nil {
		sub.Close()
		return SubscriptionMessage{}, ctx.Err()
	}
	return m, err
}

// Close ends the subscription.
func (sub *Subscription) Close() error {
	sub.once.Do(sub.s.close)
	return nil
}
