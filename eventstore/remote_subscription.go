package eventstore

import (
	"context"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

func (r *remoteBackend) subscribeAll(ctx context.Context, opts SubscribeOptions) (subscription, error) {
	o := esdb.SubscribeToAllOptions{From: esdb.Start{}}
	if !opts.FromStart {
		o.From = esdb.Position{Commit: opts.From, Prepare: opts.From}
	}
	if f := esdbFilter(opts.Filter); f != nil {
		o.Filter = f
		o.CheckpointInterval = 1
		o.MaxSearchWindow = defaultCheckpointInterval
		if opts.CheckpointInterval > 0 {
			o.MaxSearchWindow = opts.CheckpointInterval
		}
	}
	sub, err := r.subscribe(ctx, o)
	if err != nil {
		return nil, remoteError(ctx, "subscribe to $all", err)
	}
	return remoteSubscription{sub}, nil
}

// subscribe opens a subscription through the link (see call); the
// subscription's reads do not go through the client's connection state,
// so they run on the caller's goroutine.
func (r *remoteBackend) subscribe(ctx context.Context, o esdb.SubscribeToAllOptions) (*esdb.Subscription, error) {
	return call(ctx, r.link, func(ctx context.Context, c *esdb.Client) (*esdb.Subscription, error) {
		return c.SubscribeToAll(ctx, o)
	}, func(sub *esdb.Subscription) { sub.Close() })
}

func esdbFilter(f Filter) *esdb.SubscriptionFilter {
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

type remoteSubscription struct{ sub *esdb.Subscription }

func (s remoteSubscription) next(ctx context.Context) (SubscriptionMessage, error) {
	stop := context.AfterFunc(ctx, func() { s.sub.Close() })
	defer stop()
	for {
		ev := s.sub.Recv()
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

func (s remoteSubscription) close() { s.sub.Close() }

// scanBounds sends positions, in increasing order, that cut the log after
// start into ranges of about window*interval records: the checkpoints of a
// filtered subscription whose filter matches nothing, because an
// EventStoreDB server refuses reads from a position inside a record. It
// closes bounds when the subscription reaches head or catches up, or
// fails, or ctx ends.
func (r *remoteBackend) scanBounds(ctx context.Context, start, head uint64, cfg scanConfig, bounds chan<- uint64) {
	defer close(bounds)
	opts := esdb.SubscribeToAllOptions{
		From: esdb.Position{Commit: start, Prepare: start},
		// No event type starts with "$ordo-": user types never start with
		// "$" and the server's own are known. Any that did would only cost
		// their delivery here; they are not used.
		Filter:             &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"$ordo-scan-boundary-"}},
		MaxSearchWindow:    cfg.window,
		CheckpointInterval: cfg.interval,
	}
	if start == 0 {
		opts.From = esdb.Start{}
	}
	sub, err := r.subscribe(ctx, opts)
	if err != nil {
		return // the rest of the log is read as one range
	}
	defer sub.Close()
	stop := context.AfterFunc(ctx, func() { sub.Close() })
	defer stop()
	for {
		ev := sub.Recv()
		switch {
		case ev.CheckPointReached != nil:
			select {
			case bounds <- ev.CheckPointReached.Commit:
			case <-ctx.Done():
				return
			}
			// Beyond the head the last range reads on to the end anyway,
			// and a server without caught-up messages would keep the
			// subscription live.
			if ev.CheckPointReached.Commit >= head {
				return
			}
		case ev.CaughtUp != nil, ev.SubscriptionDropped != nil:
			return
		}
	}
}
