package acceptance

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
	"github.com/ordo-dev/ordo/eventually"
)

// Behaviours of persistent subscriptions beyond the client's own tests,
// each as EventStoreDB 24.10 has it.

// psSettings are the client's defaults changed by fn.
func psSettings(fn func(*esdb.PersistentSubscriptionSettings)) *esdb.PersistentSubscriptionSettings {
	s := esdb.SubscriptionSettingsDefault()
	fn(&s)
	return &s
}

// recvWithin is the next event of sub, failing after d or on a drop.
func recvWithin(tb testing.TB, sub *esdb.PersistentSubscription, d time.Duration) *esdb.EventAppeared {
	tb.Helper()
	got := make(chan *esdb.PersistentSubscriptionEvent, 1)
	go func() { got <- sub.Recv() }()
	select {
	case ev := <-got:
		if ev.EventAppeared == nil {
			tb.Fatalf("persistent subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
		return ev.EventAppeared
	case <-time.After(d):
		tb.Fatalf("no event within %v", d)
	}
	return nil
}

// TestPersistentNackActions: retry resends with a growing retry count and
// parks after MaxRetryCount; park parks at once; skip forgets; parked
// events are links in $persistentsubscription-<stream>::<group>-parked and
// a replay sends them again (with the parked link attached).
func TestPersistentNackActions(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	stream, group := name("nack"), "g"
	evs := events(4)
	appendOK(t, c, stream, esdb.NoStream{}, evs...)
	if err := c.CreatePersistentSubscription(ctx, stream, group, esdb.PersistentStreamSubscriptionOptions{
		StartFrom: esdb.Start{}, Settings: psSettings(func(s *esdb.PersistentSubscriptionSettings) { s.MaxRetryCount = 2 })}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscription(ctx, stream, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	retries := map[uint64][]int{}
	for handled := 0; handled < 4; {
		ev := recvWithin(t, sub, 10*time.Second)
		rev := ev.Event.OriginalEvent().EventNumber
		retries[rev] = append(retries[rev], ev.RetryCount)
		switch rev {
		case 0: // retried until parked
			_ = sub.Nack("again", esdb.NackActionRetry, ev.Event)
			if ev.RetryCount == 2 {
				handled++
			}
		case 1:
			_ = sub.Nack("poison", esdb.NackActionPark, ev.Event)
			handled++
		case 2:
			_ = sub.Nack("not mine", esdb.NackActionSkip, ev.Event)
			handled++
		case 3:
			_ = sub.Ack(ev.Event)
			handled++
		}
	}
	if got := retries[0]; len(got) != 3 || got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("event 0 was delivered with retry counts %v, want [0 1 2] before it is parked", got)
	}
	for _, rev := range []uint64{1, 2, 3} {
		if len(retries[rev]) != 1 {
			t.Fatalf("event %d was delivered %d times, want once", rev, len(retries[rev]))
		}
	}
	waitParked(t, c, &stream, group, 2)

	parked := "$persistentsubscription-" + stream + "::" + group + "-parked"
	rs, err := c.ReadStream(ctx, parked, esdb.ReadStreamOptions{ResolveLinkTos: true}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var parkedIDs []uuid.UUID
	for _, ev := range drain(t, rs) {
		if ev.Link == nil || ev.Link.EventType != "$>" || ev.Event == nil {
			t.Fatalf("parked event %+v: want a resolved link", ev)
		}
		parkedIDs = append(parkedIDs, ev.Event.EventID)
	}
	if len(parkedIDs) != 2 || !(parkedIDs[0] == evs[1].EventID && parkedIDs[1] == evs[0].EventID) {
		t.Fatalf("parked stream holds %v, want events 1 then 0 (%s, %s)", parkedIDs, evs[1].EventID, evs[0].EventID)
	}

	if err := c.ReplayParkedMessages(ctx, stream, group, esdb.ReplayParkedMessagesOptions{}); err != nil {
		t.Fatal(err)
	}
	var replayed []uuid.UUID
	for len(replayed) < 2 {
		ev := recvWithin(t, sub, 10*time.Second)
		if ev.Event.Link == nil || ev.Event.Link.StreamID != parked || ev.RetryCount != 0 {
			t.Fatalf("replayed event: link %+v, retry %d; want the parked link and retry count 0", ev.Event.Link, ev.RetryCount)
		}
		replayed = append(replayed, ev.Event.Event.EventID)
		_ = sub.Ack(ev.Event)
	}
	if replayed[0] != evs[1].EventID || replayed[1] != evs[0].EventID {
		t.Fatalf("replayed %v, want the parked events in order", replayed)
	}
	// Handled after the replay: the parked stream is truncated past them.
	eventually.NoError(t, 10*time.Second, "no event counted as parked after the replay", func() error {
		info, err := c.GetPersistentSubscriptionInfo(ctx, stream, group, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := info.Stats.ParkedMessagesCount; n != 0 {
			return fmt.Errorf("%d events still counted as parked after they were replayed and acknowledged", n)
		}
		return nil
	})
}

// TestPersistentMessageTimeout: an event not acknowledged within the
// message timeout is sent again with its retry count raised, and parked
// once it reached the max retry count.
func TestPersistentMessageTimeout(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	stream, group := name("timeout"), "g"
	appendOK(t, c, stream, esdb.NoStream{}, events(1)...)
	if err := c.CreatePersistentSubscription(ctx, stream, group, esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{},
		Settings: psSettings(func(s *esdb.PersistentSubscriptionSettings) { s.MessageTimeout = 500; s.MaxRetryCount = 1 })}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscription(ctx, stream, group, esdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first := recvWithin(t, sub, 10*time.Second)
	again := recvWithin(t, sub, 10*time.Second) // never acknowledged: timed out
	if first.RetryCount != 0 || again.RetryCount != 1 || again.Event.OriginalEvent().EventID != first.Event.OriginalEvent().EventID {
		t.Fatalf("deliveries: retry %d then %d of %s and %s; want the same event, retry 0 then 1",
			first.RetryCount, again.RetryCount, first.Event.OriginalEvent().EventID, again.Event.OriginalEvent().EventID)
	}
	waitParked(t, c, &stream, group, 1)
}

// TestPersistentConsumerStrategies: round robin alternates between
// consumers, dispatch-to-single fills the first, pinned keeps each stream
// with one consumer.
func TestPersistentConsumerStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy esdb.ConsumerStrategy
		check    func(t *testing.T, byConsumer [2][]*esdb.RecordedEvent)
	}{
		{esdb.ConsumerStrategyRoundRobin, func(t *testing.T, got [2][]*esdb.RecordedEvent) {
			if len(got[0]) != 6 || len(got[1]) != 6 {
				t.Fatalf("round robin: %d and %d events, want 6 each", len(got[0]), len(got[1]))
			}
		}},
		{esdb.ConsumerStrategyDispatchToSingle, func(t *testing.T, got [2][]*esdb.RecordedEvent) {
			if len(got[0]) != 12 || len(got[1]) != 0 {
				t.Fatalf("dispatch to single: %d and %d events, want all 12 to the first", len(got[0]), len(got[1]))
			}
		}},
		{esdb.ConsumerStrategyPinned, func(t *testing.T, got [2][]*esdb.RecordedEvent) {
			owner := map[string]int{}
			for i, evs := range got {
				for _, e := range evs {
					if o, ok := owner[e.StreamID]; ok && o != i {
						t.Fatalf("pinned: stream %s went to both consumers", e.StreamID)
					}
					owner[e.StreamID] = i
				}
			}
			if len(got[0]) == 0 || len(got[1]) == 0 {
				t.Fatalf("pinned: %d and %d events, want the streams shared between both", len(got[0]), len(got[1]))
			}
		}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			c := client(t)
			ctx := ctxT(t)
			prefix := name("pin") + "-"
			group := name("strategy")
			if err := c.CreatePersistentSubscriptionToAll(ctx, group, esdb.PersistentAllSubscriptionOptions{StartFrom: esdb.End{},
				Filter:   &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}},
				Settings: psSettings(func(s *esdb.PersistentSubscriptionSettings) { s.ConsumerStrategyName = tc.strategy })}); err != nil {
				t.Fatal(err)
			}
			var subs [2]*esdb.PersistentSubscription
			for i := range subs {
				sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 20})
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				subs[i] = sub
			}
			waitConnections(t, c, group, 2)
			for i := 0; i < 12; i++ {
				appendOK(t, c, prefix+strconv.Itoa(i%4), esdb.Any{}, event("Thing", `{}`))
			}
			var got [2][]*esdb.RecordedEvent
			events := make(chan [2]any, 12)
			for i, sub := range subs {
				go func() {
					for {
						ev := sub.Recv()
						if ev.EventAppeared == nil {
							return
						}
						events <- [2]any{i, ev.EventAppeared.Event.Event}
					}
				}()
			}
			for n := 0; n < 12; n++ {
				select {
				case e := <-events:
					got[e[0].(int)] = append(got[e[0].(int)], e[1].(*esdb.RecordedEvent))
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of 12 events arrived", n)
				}
			}
			tc.check(t, got)
		})
	}
}

// waitConnections polls until a $all group has n consumers.
func waitConnections(tb testing.TB, c *esdb.Client, group string, n int) {
	tb.Helper()
	eventually.NoError(tb, 10*time.Second, fmt.Sprintf("%d consumers of group %s", n, group), func() error {
		info, err := c.GetPersistentSubscriptionInfoToAll(ctxT(tb), group, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		if len(info.Connections) < n {
			return fmt.Errorf("%d consumers connected", len(info.Connections))
		}
		return nil
	})
}

// TestPersistentNackStop: a consumer that nacks with stop is dropped, and
// what it held goes to the other consumer.
func TestPersistentNackStop(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	stream, group := name("stop"), "g"
	appendOK(t, c, stream, esdb.NoStream{}, events(1)...)
	if err := c.CreatePersistentSubscription(ctx, stream, group, esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}}); err != nil {
		t.Fatal(err)
	}
	a, err := c.SubscribeToPersistentSubscription(ctx, stream, group, esdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ev := recvWithin(t, a, 10*time.Second)
	b, err := c.SubscribeToPersistentSubscription(ctx, stream, group, esdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Nack("shutting down", esdb.NackActionStop, ev.Event); err != nil {
		t.Fatal(err)
	}
	if next := a.Recv(); next.SubscriptionDropped == nil {
		t.Fatalf("after nack stop the consumer got %+v, want its subscription dropped", next)
	}
	again := recvWithin(t, b, 10*time.Second)
	if again.Event.OriginalEvent().EventID != ev.Event.OriginalEvent().EventID || again.RetryCount != 1 {
		t.Fatalf("the other consumer got %s (retry %d), want the stopped one's event with retry 1", again.Event.OriginalEvent().EventID, again.RetryCount)
	}
}

// TestPersistentAllFilterAndResolveLinks: a group on $all with a filter
// gets only matching events (links resolved when asked), and its
// checkpoint moves past the events it filtered out.
func TestPersistentAllFilterAndResolveLinks(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	prefix := name("wanted") + "-"
	group := name("filtered")
	target := prefix + "target"
	appendOK(t, c, target, esdb.NoStream{}, events(1)...)
	if err := c.CreatePersistentSubscriptionToAll(ctx, group, esdb.PersistentAllSubscriptionOptions{StartFrom: esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}},
		Settings: psSettings(func(s *esdb.PersistentSubscriptionSettings) {
			s.ResolveLinkTos, s.CheckpointLowerBound, s.CheckpointUpperBound = true, 1, 1
		})}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscriptionToAll(ctx, group, esdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first := recvWithin(t, sub, 10*time.Second)
	if first.Event.Event.StreamID != target {
		t.Fatalf("first event from %s, want %s", first.Event.Event.StreamID, target)
	}
	_ = sub.Ack(first.Event)
	for i := 0; i < 40; i++ {
		appendOK(t, c, name("unwanted"), esdb.NoStream{}, events(1)...)
	}
	link := esdb.EventData{EventID: uuid.New(), EventType: "$>", ContentType: esdb.ContentTypeBinary, Data: []byte("0@" + target)}
	w := appendOK(t, c, prefix+"links", esdb.NoStream{}, link)
	second := recvWithin(t, sub, 10*time.Second)
	if second.Event.Link == nil || second.Event.Link.StreamID != prefix+"links" || second.Event.Event == nil || second.Event.Event.StreamID != target {
		t.Fatalf("second event: %+v, want the link to %s resolved", second.Event, target)
	}
	_ = sub.Ack(second.Event)
	eventually.NoError(t, 10*time.Second, fmt.Sprintf("the checkpoint to reach the link at %d past the filtered events", w.CommitPosition), func() error {
		info, err := c.GetPersistentSubscriptionInfoToAll(ctx, group, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := info.Stats.LastCheckpointedPosition; p == nil || p.Commit < w.CommitPosition {
			return fmt.Errorf("checkpoint %+v", p)
		}
		return nil
	})
}

// TestPersistentErrors: the statuses and trailers EventStoreDB answers
// with, as the raw gRPC client sees them.
func TestPersistentErrors(t *testing.T) {
	if os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("uses the embedded server's address for a raw gRPC client")
	}
	srv := startEmbedded(t, t.TempDir(), 0)
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := persistent.NewPersistentSubscriptionsClient(conn)
	id := func(s string) *shared.StreamIdentifier { return &shared.StreamIdentifier{StreamName: []byte(s)} }
	settings := func(fn func(*persistent.CreateReq_Settings)) *persistent.CreateReq_Settings {
		s := &persistent.CreateReq_Settings{MaxRetryCount: 10, MinCheckpointCount: 10, MaxCheckpointCount: 1000,
			LiveBufferSize: 500, ReadBatchSize: 20, HistoryBufferSize: 500, NamedConsumerStrategy: persistent.CreateReq_RoundRobin,
			MessageTimeout:  &persistent.CreateReq_Settings_MessageTimeoutMs{MessageTimeoutMs: 30000},
			CheckpointAfter: &persistent.CreateReq_Settings_CheckpointAfterMs{CheckpointAfterMs: 2000}}
		if fn != nil {
			fn(s)
		}
		return s
	}
	create := func(stream, group string, s *persistent.CreateReq_Settings) (metadata.MD, error) {
		var tr metadata.MD
		_, err := raw.Create(ctxT(t), &persistent.CreateReq{Options: &persistent.CreateReq_Options{
			StreamOption: &persistent.CreateReq_Options_Stream{Stream: &persistent.CreateReq_StreamOptions{
				StreamIdentifier: id(stream), RevisionOption: &persistent.CreateReq_StreamOptions_Start{Start: &shared.Empty{}}}},
			GroupName: group, Settings: s}}, grpc.Trailer(&tr))
		return tr, err
	}
	stream := name("errors")
	for _, tc := range []struct {
		name      string
		settings  *persistent.CreateReq_Settings
		code      codes.Code
		exception string
	}{
		{"create", settings(nil), codes.OK, ""},
		{"create again", settings(nil), codes.AlreadyExists, "persistent-subscription-exists"},
		{"unknown consumer strategy", settings(func(s *persistent.CreateReq_Settings) { s.ConsumerStrategy = "Random" }), codes.Internal, "persistent-subscription-failed"},
		{"read batch as large as the buffer", settings(func(s *persistent.CreateReq_Settings) { s.ReadBatchSize = 500 }), codes.Internal, "persistent-subscription-failed"},
	} {
		group := "g"
		if tc.name != "create" && tc.name != "create again" {
			group = tc.name
		}
		tr, err := create(stream, group, tc.settings)
		if status.Code(err) != tc.code || (tc.exception != "" && (len(tr.Get("exception")) == 0 || tr.Get("exception")[0] != tc.exception)) {
			t.Errorf("%s: got %v, trailers %v; want %v with exception %q", tc.name, err, tr, tc.code, tc.exception)
		}
	}
	// More consumers than MaxSubscriberCount.
	if _, err := create(stream, "one", settings(func(s *persistent.CreateReq_Settings) { s.MaxSubscriberCount = 1 })); err != nil {
		t.Fatal(err)
	}
	read := func(group string) (persistent.PersistentSubscriptions_ReadClient, error) {
		call, err := raw.Read(ctxT(t))
		if err != nil {
			return nil, err
		}
		if err := call.Send(&persistent.ReadReq{Content: &persistent.ReadReq_Options_{Options: &persistent.ReadReq_Options{
			StreamOption: &persistent.ReadReq_Options_StreamIdentifier{StreamIdentifier: id(stream)}, GroupName: group, BufferSize: 10,
			UuidOption: &persistent.ReadReq_Options_UUIDOption{Content: &persistent.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}}}}}); err != nil {
			return nil, err
		}
		_, err = call.Recv()
		return call, err
	}
	first, err := read("one")
	if err != nil {
		t.Fatal(err)
	}
	defer first.CloseSend()
	if _, err := read("one"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a second consumer of a group with MaxSubscriberCount 1: got %v, want FailedPrecondition", err)
	}
	if _, err := read("missing"); status.Code(err) != codes.NotFound {
		t.Errorf("reading a group that does not exist: got %v, want NotFound", err)
	}
	if _, err := raw.Delete(ctxT(t), &persistent.DeleteReq{Options: &persistent.DeleteReq_Options{
		StreamOption: &persistent.DeleteReq_Options_StreamIdentifier{StreamIdentifier: id(stream)}, GroupName: "missing"}}); status.Code(err) != codes.NotFound {
		t.Errorf("deleting a group that does not exist: got %v, want NotFound", err)
	}
	// The $all start must not be beyond the end of the log.
	_, err = raw.Create(ctxT(t), &persistent.CreateReq{Options: &persistent.CreateReq_Options{
		StreamOption: &persistent.CreateReq_Options_All{All: &persistent.CreateReq_AllOptions{
			AllOption:    &persistent.CreateReq_AllOptions_Position{Position: &persistent.CreateReq_Position{CommitPosition: 1 << 40, PreparePosition: 1 << 40}},
			FilterOption: &persistent.CreateReq_AllOptions_NoFilter{NoFilter: &shared.Empty{}}}},
		GroupName: "beyond", Settings: settings(nil)}})
	if status.Code(err) != codes.Internal {
		t.Errorf("a group on $all from beyond the end: got %v, want the failed-subscription error", err)
	}
}

// TestPersistentSurvivesRestart: definitions and checkpoints survive a
// restart of the server; a group from the end keeps the events written
// after it was created but before the restart.
func TestPersistentSurvivesRestart(t *testing.T) {
	if os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("restarts the embedded server")
	}
	dir := t.TempDir()
	srv := startEmbedded(t, dir, 0)
	c := esdbtest.Connect(t, srv.URL())
	ctx := ctxT(t)
	stream := name("restart")
	appendOK(t, c, stream, esdb.NoStream{}, events(10)...)
	every := psSettings(func(s *esdb.PersistentSubscriptionSettings) { s.CheckpointLowerBound, s.CheckpointUpperBound = 1, 1 })
	if err := c.CreatePersistentSubscription(ctx, stream, "acked", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}, Settings: every}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePersistentSubscription(ctx, stream, "from-end", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.End{}}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscription(ctx, stream, "acked", esdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		_ = sub.Ack(recvWithin(t, sub, 10*time.Second).Event)
	}
	waitCheckpoint(t, c, stream, "acked", 5)
	sub.Close()
	appendOK(t, c, stream, esdb.Revision(9), event("AfterCreate", `{}`)) // revision 10
	c.Close()
	srv.Close()

	srv = startEmbedded(t, dir, 0)
	c = esdbtest.Connect(t, srv.URL())
	subs, err := c.ListPersistentSubscriptionsForStream(ctx, stream, esdb.ListPersistentSubscriptionsOptions{})
	if err != nil || len(subs) != 2 {
		t.Fatalf("after a restart %d groups are listed (%v), want 2", len(subs), err)
	}
	for group, want := range map[string]uint64{"acked": 6, "from-end": 10} {
		sub, err := c.SubscribeToPersistentSubscription(ctx, stream, group, esdb.SubscribeToPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := recvWithin(t, sub, 10*time.Second).Event.OriginalEvent().EventNumber; got != want {
			t.Errorf("group %s after a restart starts at revision %d, want %d", group, got, want)
		}
		sub.Close()
	}
}

// waitCheckpoint polls until a stream group's checkpoint reached rev.
func waitCheckpoint(tb testing.TB, c *esdb.Client, stream, group string, rev uint64) {
	tb.Helper()
	eventually.NoError(tb, 10*time.Second, fmt.Sprintf("the checkpoint of %s/%s to reach revision %d", stream, group, rev), func() error {
		info, err := c.GetPersistentSubscriptionInfo(ctxT(tb), stream, group, esdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		if r := info.Stats.LastCheckpointedEventRevision; r == nil || *r < rev {
			return fmt.Errorf("checkpoint %v", r)
		}
		return nil
	})
}
