package acceptance

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// collect reads subscription events until want events of the given streams
// arrived, failing on a gap or duplicate per stream.
func collect(tb testing.TB, sub *esdb.Subscription, want int, keep func(*esdb.RecordedEvent) bool) (events []*esdb.RecordedEvent, caughtUp, checkpoints int) {
	tb.Helper()
	deadline := time.AfterFunc(60*time.Second, func() { sub.Close() })
	defer deadline.Stop()
	for len(events) < want {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			if e := ev.EventAppeared.Event; keep(e) {
				events = append(events, e)
			}
		case ev.CaughtUp != nil:
			caughtUp++
		case ev.CheckPointReached != nil:
			checkpoints++
		case ev.SubscriptionDropped != nil:
			tb.Fatalf("subscription dropped after %d of %d events: %v", len(events), want, ev.SubscriptionDropped.Error)
		}
	}
	return events, caughtUp, checkpoints
}

// awaitCaughtUp reads on until the caught-up message, with no further
// event before it (collect stops at the events it wanted, and caught-up
// comes after the last of them when all were stored before the
// subscription caught up). It reports whether the message came.
func awaitCaughtUp(tb testing.TB, sub *esdb.Subscription) bool {
	tb.Helper()
	stuck := time.AfterFunc(30*time.Second, func() { sub.Close() })
	defer stuck.Stop()
	for {
		ev := sub.Recv()
		switch {
		case ev.CaughtUp != nil:
			return true
		case ev.EventAppeared != nil:
			tb.Errorf("an event beyond those expected before caught-up: %s revision %d", ev.EventAppeared.Event.StreamID, ev.EventAppeared.Event.EventNumber)
			return false
		case ev.SubscriptionDropped != nil:
			return false
		}
	}
}

// TestCatchUpToLiveUnderConcurrentAppends starts subscriptions while writers
// append: each subscriber sees every event of the run exactly once, in order.
func TestCatchUpToLiveUnderConcurrentAppends(t *testing.T) {
	c := client(t)
	prefix := name("cu")
	const writers, perWriter = 8, 100
	total := writers * perWriter
	streamOf := func(w int) string { return fmt.Sprintf("%s-%d", prefix, w) }
	// Some history before anyone subscribes.
	for w := 0; w < writers; w++ {
		appendOK(t, c, streamOf(w), esdb.NoStream{}, event("Thing", `{"i":0}`))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 1; i < perWriter; i++ {
				if _, err := c.AppendToStream(ctxT(t), streamOf(w), esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(uint64(i - 1))}, event("Thing", fmt.Sprintf(`{"i":%d}`, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	close(start)
	var subs sync.WaitGroup
	for i := 0; i < 3; i++ {
		subs.Add(1)
		go func() {
			defer subs.Done()
			time.Sleep(time.Duration(i*7) * time.Millisecond) // join at different moments of the race
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{},
				Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}}})
			if err != nil {
				t.Error(err)
				return
			}
			defer sub.Close()
			evs, caughtUp, _ := collect(t, sub, total, func(*esdb.RecordedEvent) bool { return true })
			next := map[string]uint64{}
			var lastPos uint64
			for _, e := range evs {
				if e.EventNumber != next[e.StreamID] {
					t.Errorf("subscriber %d: %s revision %d, want %d (gap or duplicate)", i, e.StreamID, e.EventNumber, next[e.StreamID])
					return
				}
				if e.Position.Commit <= lastPos {
					t.Errorf("subscriber %d: position %d after %d", i, e.Position.Commit, lastPos)
					return
				}
				next[e.StreamID]++
				lastPos = e.Position.Commit
			}
			if caughtUp == 0 && !awaitCaughtUp(t, sub) {
				t.Errorf("subscriber %d never reported caught up", i)
			}
		}()
	}
	wg.Wait()
	subs.Wait()
}

func TestSubscriptionFiltersAndCheckpoints(t *testing.T) {
	c := client(t)
	p := name("flt")
	for i := 0; i < 40; i++ {
		appendOK(t, c, fmt.Sprintf("%s-%s-%d", p, []string{"order", "sku"}[i%2], i), esdb.NoStream{}, event([]string{"OrderPlaced", "StockAdded"}[i%2], `{}`))
	}
	tests := []struct {
		name   string
		filter esdb.SubscriptionFilter
		want   string // every event's stream must contain this
	}{
		{"stream prefix", esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{p + "-order"}}, "-order-"},
		{"stream regex", esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: "^" + p + "-sku-"}, "-sku-"},
		{"event type prefix", esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"OrderPl"}}, "-order-"},
		{"event type regex", esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^Stock"}, "-sku-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := tt.filter
			sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: &f, MaxSearchWindow: 4, CheckpointInterval: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			evs, _, checkpoints := collect(t, sub, 20, func(e *esdb.RecordedEvent) bool { return strings.HasPrefix(e.StreamID, p) })
			for _, e := range evs {
				if !strings.Contains(e.StreamID, tt.want) {
					t.Fatalf("filter let through %s (%s)", e.StreamID, e.EventType)
				}
			}
			if checkpoints == 0 {
				t.Fatal("a filtered subscription with a window of 4 reported no checkpoint")
			}
		})
	}
}

func TestStreamSubscription(t *testing.T) {
	c := client(t)
	s := name("ss")
	appendOK(t, c, s, esdb.NoStream{}, events(3)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.SubscribeToStream(ctx, s, esdb.SubscribeToStreamOptions{From: esdb.Revision(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	appendOK(t, c, s, esdb.Revision(2), events(2)...)
	evs, caughtUp, _ := collect(t, sub, 4, func(*esdb.RecordedEvent) bool { return true })
	for i, e := range evs {
		if e.EventNumber != uint64(i+1) {
			t.Fatalf("stream subscription from revision 0 (exclusive): event %d has revision %d", i, e.EventNumber)
		}
	}
	if caughtUp == 0 && !awaitCaughtUp(t, sub) {
		t.Fatal("no caught-up message")
	}
	if _, err := c.TombstoneStream(ctxT(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	// EventStoreDB delivers the $streamDeleted record, then ends the call
	// with FailedPrecondition (the client passes the raw status through).
	sawTombstone := false
	for {
		ev := sub.Recv()
		if ev.EventAppeared != nil && ev.EventAppeared.Event.EventType == "$streamDeleted" {
			sawTombstone = true
		}
		if ev.SubscriptionDropped != nil {
			if status.Code(ev.SubscriptionDropped.Error) != codes.FailedPrecondition || !sawTombstone {
				t.Fatalf("after the tombstone: saw $streamDeleted %t, ended with %v; want the record, then FailedPrecondition",
					sawTombstone, ev.SubscriptionDropped.Error)
			}
			return
		}
	}
}

// TestIdleSubscriptionSurvivesKeepalive keeps a subscription open with no
// traffic past the client's keepalive pings; grpc-go's default enforcement
// would drop it with GOAWAY too_many_pings.
func TestIdleSubscriptionSurvivesKeepalive(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 25 s for keepalive pings")
	}
	c := client(t)
	s := name("idle")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.SubscribeToStream(ctx, s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	appended := make(chan error, 1)
	time.AfterFunc(25*time.Second, func() {
		_, err := c.AppendToStream(context.Background(), s, esdb.AppendToStreamOptions{}, event("Late", `{}`))
		appended <- err
	})
	evs, _, _ := collect(t, sub, 1, func(*esdb.RecordedEvent) bool { return true })
	if evs[0].EventType != "Late" {
		t.Fatalf("got %s", evs[0].EventType)
	}
	// The subscriber can see the event before the appender sees its reply;
	// the client must stay open until both have.
	if err := <-appended; err != nil {
		t.Fatalf("append after idling: %v", err)
	}
}
