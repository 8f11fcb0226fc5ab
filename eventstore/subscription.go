package eventstore

import (
	"context"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// SubscribeOptions say where an $all subscription starts and what it gets.
type SubscribeOptions struct {
	From      uint64 // exclusive: events after this position
	FromStart bool   // from the very beginning (From is ignored)
	Filter    Filter
	// CheckpointInterval asks for a checkpoint every this many considered
	// events (with a filter only); 0 uses the server's default.
	CheckpointInterval int
}

// SubscriptionMessage is one item of a subscription: an event, a checkpoint
// position safe to resume after, or the news that catch-up reached live.
type SubscriptionMessage struct {
	Event      *RecordedEvent
	Checkpoint uint64
	CaughtUp   bool
}

// Subscription is a live $all subscription.
type Subscription struct {
	sub *esdb.Subscription
}

// SubscribeAll subscribes to $all with a server-side filter.
func (s *Store) SubscribeAll(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	o := esdb.SubscribeToAllOptions{From: esdb.Start{}}
	if !opts.FromStart {
		o.From = esdb.Position{Commit: opts.From, Prepare: opts.From}
	}
	if f := opts.Filter.esdb(); f != nil {
		o.Filter = f
		o.CheckpointInterval = 1
		if opts.CheckpointInterval > 0 {
			o.MaxSearchWindow = opts.CheckpointInterval
		}
	}
	sub, err := s.client.SubscribeToAll(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("subscribe to $all: %w", translate(err))
	}
	return &Subscription{sub: sub}, nil
}

// Next blocks for the next message. When ctx ends, the subscription is
// closed and Next returns ctx's error; when the server drops it, Next
// returns an error wrapping ErrUnavailable: resubscribe from the last
// position seen.
func (sub *Subscription) Next(ctx context.Context) (SubscriptionMessage, error) {
	stop := context.AfterFunc(ctx, func() { sub.sub.Close() })
	defer stop()
	for {
		ev := sub.sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			e := recorded(ev.EventAppeared.Event)
			return SubscriptionMessage{Event: &e}, nil
		case ev.CheckPointReached != nil:
			return SubscriptionMessage{Checkpoint: ev.CheckPointReached.Commit}, nil
		case ev.CaughtUp != nil:
			return SubscriptionMessage{CaughtUp: true}, nil
		case ev.SubscriptionDropped != nil:
			if err := ctx.Err(); err != nil {
				return SubscriptionMessage{}, err
			}
			return SubscriptionMessage{}, fmt.Errorf("%w: subscription dropped: %v", ErrUnavailable, ev.SubscriptionDropped.Error)
		}
	}
}

// Close ends the subscription.
func (sub *Subscription) Close() error { return sub.sub.Close() }
