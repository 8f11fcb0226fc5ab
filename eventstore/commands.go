package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordo-dev/ordo/commands"
)

// CommandStore gives the command handlers (package commands) the event
// store interface they declare, with its errors translated.
type CommandStore struct{ *Store }

var _ commands.EventStore = CommandStore{}

// AppendToStream implements commands.EventStore.
func (o CommandStore) AppendToStream(ctx context.Context, stream string, expected int64, events []commands.NewEvent) (commands.Appended, error) {
	exp := NoStream()
	if expected >= 0 {
		exp = Exact(uint64(expected))
	}
	data := make([]EventData, len(events))
	for i, e := range events {
		data[i] = EventData{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
	}
	res, err := o.Store.Append(ctx, stream, exp, data...)
	if errors.Is(err, ErrWrongExpectedRevision) {
		return commands.Appended{}, fmt.Errorf("%w: %v", commands.ErrConflict, err)
	}
	if err != nil {
		return commands.Appended{}, err
	}
	return commands.Appended{Revision: int64(res.Revision), Position: res.Position}, nil
}

// ReadStream implements commands.EventStore.
func (o CommandStore) ReadStream(ctx context.Context, stream string, from int64, fn func(commands.StoredEvent) error) error {
	err := o.Store.ReadStream(ctx, stream, uint64(from), func(e RecordedEvent) error {
		return fn(commands.StoredEvent{Revision: int64(e.Revision), Position: e.Position, Type: e.Type, Data: e.Data, Metadata: e.Metadata})
	})
	if errors.Is(err, ErrStreamNotFound) {
		return fmt.Errorf("%w: %v", commands.ErrStreamNotFound, err)
	}
	return err
}

// SagaSource feeds the order saga from the $all subscription, filtered on
// the server to order streams.
type SagaSource struct{ *Store }

var _ commands.SagaSource = SagaSource{}

// SubscribeOrderEvents implements commands.SagaSource.
func (s SagaSource) SubscribeOrderEvents(ctx context.Context, after uint64) (commands.SagaFeed, error) {
	sub, err := s.Store.SubscribeAll(ctx, SubscribeOptions{From: after, FromStart: after == 0,
		Filter: Filter{StreamPrefixes: []string{commands.StreamName("")}}, CheckpointInterval: 256})
	if err != nil {
		return nil, err
	}
	return sagaFeed{sub}, nil
}

type sagaFeed struct{ sub *Subscription }

func (f sagaFeed) Next(ctx context.Context) (commands.SagaItem, error) {
	for {
		m, err := f.sub.Next(ctx)
		if err != nil {
			return commands.SagaItem{}, err
		}
		switch {
		case m.Event != nil:
			e := m.Event
			return commands.SagaItem{Stream: e.Stream, Position: e.Position, Event: &commands.StoredEvent{Revision: int64(e.Revision),
				Position: e.Position, Type: e.Type, Data: e.Data, Metadata: e.Metadata}}, nil
		case !m.CaughtUp:
			return commands.SagaItem{Position: m.Checkpoint}, nil
		}
	}
}

func (f sagaFeed) Close() error { return f.sub.Close() }
