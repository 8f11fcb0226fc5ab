package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore"
)

func open(t *testing.T) *eventstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(typ string) eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`), Metadata: []byte(`{"command_id":"c"}`)}
}

func TestAppendReadAndErrors(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	r, err := s.Append(ctx, "order-1", eventstore.NoStream(), ev("A"), ev("B"))
	if err != nil || r.Revision != 1 || r.Position == 0 {
		t.Fatalf("append: %+v %v", r, err)
	}
	if _, err := s.Append(ctx, "order-1", eventstore.Exact(0), ev("C")); !errors.Is(err, eventstore.ErrWrongExpectedRevision) {
		t.Fatalf("stale revision: %v, want ErrWrongExpectedRevision", err)
	}
	var types []string
	if err := s.ReadStream(ctx, "order-1", 1, func(e eventstore.RecordedEvent) error {
		types = append(types, e.Type)
		if string(e.Metadata) != `{"command_id":"c"}` || e.Created.IsZero() || e.Position == 0 {
			return fmt.Errorf("event lost metadata or position: %+v", e)
		}
		return nil
	}); err != nil || fmt.Sprint(types) != "[B]" {
		t.Fatalf("read from revision 1: %v %v", types, err)
	}
	if err := s.ReadStream(ctx, "order-none", 0, func(eventstore.RecordedEvent) error { return nil }); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	if _, err := s.Client().TombstoneStream(ctx, "order-1", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "order-1", eventstore.Any(), ev("D")); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream: %v", err)
	}
	if err := s.ReadStream(ctx, "order-1", 0, func(eventstore.RecordedEvent) error { return nil }); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("read a tombstoned stream: %v", err)
	}
	head, err := s.Head(ctx)
	if err != nil || head == 0 {
		t.Fatalf("head: %d %v", head, err)
	}
	var last []string
	if err := s.ReadStreamBackwards(ctx, "order-2", 1, func(eventstore.RecordedEvent) error { return nil }); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("backwards read of a missing stream: %v", err)
	}
	s.Append(ctx, "order-2", eventstore.Any(), ev("X"), ev("Y"))
	if err := s.ReadStreamBackwards(ctx, "order-2", 1, func(e eventstore.RecordedEvent) error { last = append(last, e.Type); return nil }); err != nil || fmt.Sprint(last) != "[Y]" {
		t.Fatalf("backwards: %v %v", last, err)
	}
}

func TestReadAllFilterAndSubscribe(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		stream := fmt.Sprintf("order-%d", i)
		if i%2 == 1 {
			stream = fmt.Sprintf("sku-%d", i)
		}
		if _, err := s.Append(ctx, stream, eventstore.Any(), ev("E")); err != nil {
			t.Fatal(err)
		}
	}
	var streams []string
	if err := s.ReadAll(ctx, 0, eventstore.Filter{StreamPrefixes: []string{"order-"}}, func(e eventstore.RecordedEvent) error {
		streams = append(streams, e.Stream)
		return nil
	}); err != nil || len(streams) != 5 {
		t.Fatalf("ReadAll with a filter: %v %v", streams, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sub, err := s.SubscribeAll(sctx, eventstore.SubscribeOptions{FromStart: true, Filter: eventstore.Filter{StreamPrefixes: []string{"order-"}}, CheckpointInterval: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got, checkpoints, caughtUp := 0, 0, false
	for !caughtUp || got < 6 {
		if caughtUp && got == 5 {
			s.Append(ctx, "order-live", eventstore.Any(), ev("Live"))
		}
		m, err := sub.Next(sctx)
		if err != nil {
			t.Fatalf("after %d events: %v", got, err)
		}
		switch {
		case m.Event != nil:
			if m.Event.Stream[:6] != "order-" {
				t.Fatalf("filter let %s through", m.Event.Stream)
			}
			got++
		case m.CaughtUp:
			caughtUp = true
		default:
			checkpoints++
		}
	}
	if checkpoints == 0 {
		t.Fatal("no checkpoint with an interval of 2")
	}
	// Next honours its context: an expired one ends the call.
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	defer stop()
	if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an expiring context: %v", err)
	}
}

func TestConnectFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := eventstore.Connect(ctx, "not a url"); err == nil {
		t.Fatal("a malformed URL must fail")
	}
}
