package eventstore

import (
	"context"

	"github.com/ordo-dev/ordo/projections"
)

// ProjectionSource feeds the read models (package projections) from the
// $all subscription, filtered on the server to order streams.
type ProjectionSource struct{ *Store }

var (
	_ projections.Source  = ProjectionSource{}
	_ projections.History = ProjectionSource{}
)

// orderStreams selects the order streams in $all.
var orderStreams = Filter{StreamPrefixes: []string{"order-"}}

// SubscribeOrders implements projections.Source.
func (p ProjectionSource) SubscribeOrders(ctx context.Context, after uint64) (projections.Feed, error) {
	sub, err := p.Store.SubscribeAll(ctx, SubscribeOptions{From: after, FromStart: after == 0,
		Filter: orderStreams, CheckpointInterval: 256})
	if err != nil {
		return nil, err
	}
	return projectionFeed{sub}, nil
}

// ReadOrders implements projections.History with ScanAll: several reads
// of $all at once, so the client's decoding runs on every core.
func (p ProjectionSource) ReadOrders(ctx context.Context, after uint64, fn func(*projections.StoredEvent) error) error {
	from := after
	if after > 0 {
		from = after + 1 // ScanAll's from is inclusive
	}
	var se projections.StoredEvent // fn keeps none, so one will do
	return p.Store.ScanAll(ctx, from, orderStreams, func(e RecordedEvent) error {
		se = projections.StoredEvent{Stream: e.Stream, Revision: e.Revision, Position: e.Position,
			Type: e.Type, Data: e.Data, Metadata: e.Metadata, Created: e.Created}
		return fn(&se)
	})
}

// Head implements projections.Source.
func (p ProjectionSource) Head(ctx context.Context) (uint64, error) { return p.Store.Head(ctx) }

type projectionFeed struct{ sub *Subscription }

func (f projectionFeed) Next(ctx context.Context) (projections.FeedItem, error) {
	for {
		m, err := f.sub.Next(ctx)
		if err != nil {
			return projections.FeedItem{}, err
		}
		switch {
		case m.Event != nil:
			e := m.Event
			return projections.FeedItem{Event: &projections.StoredEvent{Stream: e.Stream, Revision: e.Revision, Position: e.Position,
				Type: e.Type, Data: e.Data, Metadata: e.Metadata, Created: e.Created}}, nil
		case m.CaughtUp:
			return projections.FeedItem{CaughtUp: true}, nil
		default:
			return projections.FeedItem{Checkpoint: m.Checkpoint}, nil
		}
	}
}

func (f projectionFeed) Close() error { return f.sub.Close() }
