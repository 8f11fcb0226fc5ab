package acceptance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
	"github.com/ordo-dev/ordo/eventually"
)

// TestPersistentSubscriptions is a port of the official Go client's own
// persistent subscription tests (EventStore-Client-Go v4.2.0, esdb package:
// persistent_subscription_read_test.go and persistent_subscriptions_test.go,
// run by its TestPersistentSubscriptions): the same scenarios, in the same
// order, with the same assertions, through the official client. The client
// runs them against Docker containers of EventStoreDB (an empty one and one
// pre-loaded with test data); here they run against the embedded server (or
// ORDO_ESDB_URL), and the one scenario that needs pre-loaded data writes it
// first. Differences from the originals, each marked where it occurs:
// unique names instead of the name generator, waiting for the parked
// message count instead of sleeping 5 s, and a unique group name for the
// $all groups the originals call "Group 1" (a shared server may have one).
func TestPersistentSubscriptions(t *testing.T) {
	url := endpoint(t)
	emptyDB := esdbtest.Connect(t, url)
	populatedDB := esdbtest.Connect(t, url)
	t.Run("PersistentSubReadTests", func(t *testing.T) { persistentSubReadTests(t, emptyDB) })
	t.Run("PersistentSubTests", func(t *testing.T) { persistentSubTests(t, emptyDB, populatedDB) })
}

func persistentSubReadTests(t *testing.T, db *esdb.Client) {
	t.Run("ReadExistingStream_AckToReceiveNewEvents", func(t *testing.T) { psReadExistingStreamAck(t, db) })
	t.Run("ToExistingStream_StartFromBeginning_AndEventsInIt", func(t *testing.T) { psExistingStreamFromBeginning(t, db) })
	t.Run("ToNonExistingStream_StartFromBeginning_AppendEventsAfterwards", func(t *testing.T) { psNonExistingStreamFromBeginning(t, db) })
	t.Run("ToExistingStream_StartFromEnd_EventsInItAndAppendEventsAfterwards", func(t *testing.T) { psExistingStreamFromEndAppend(t, db) })
	t.Run("ToExistingStream_StartFromEnd_EventsInIt", func(t *testing.T) { psExistingStreamFromEndNoEvents(t, db) })
	t.Run("ToNonExistingStream_StartFromTwo_AppendEventsAfterwards", func(t *testing.T) { psNonExistingStreamFromTwo(t, db) })
	t.Run("ToExistingStream_StartFrom10_EventsInItAppendEventsAfterwards", func(t *testing.T) { psExistingStreamFrom(t, db, 10, 11, 10) })
	t.Run("ToExistingStream_StartFrom4_EventsInIt", func(t *testing.T) { psExistingStreamFrom(t, db, 4, 11, 4) })
	t.Run("ToExistingStream_StartFromHigherRevisionThenEventsInStream_EventsInItAppendEventsAfterwards", func(t *testing.T) { psExistingStreamFrom(t, db, 11, 12, 11) })
	t.Run("ReadExistingStream_NackToReceiveNewEvents", func(t *testing.T) { psReadExistingStreamNack(t, db) })
	t.Run("persistentSubscriptionToAll_Read", func(t *testing.T) { psToAllRead(t, db) })
}

func persistentSubTests(t *testing.T, emptyDB, populatedDB *esdb.Client) {
	t.Run("createPersistentStreamSubscription", func(t *testing.T) { psCreate(t, emptyDB) })
	t.Run("createPersistentStreamSubscription_MessageTimeoutZero", func(t *testing.T) { psCreateMessageTimeoutZero(t, emptyDB) })
	t.Run("createPersistentStreamSubscription_StreamNotExits", func(t *testing.T) { psCreateStreamNotExists(t, emptyDB) })
	t.Run("createPersistentStreamSubscription_FailsIfAlreadyExists", func(t *testing.T) { psCreateFailsIfExists(t, emptyDB) })
	t.Run("createPersistentStreamSubscription_AfterDeleting", func(t *testing.T) { psCreateAfterDeleting(t, emptyDB) })
	t.Run("updatePersistentStreamSubscription", func(t *testing.T) { psUpdate(t, emptyDB) })
	t.Run("updatePersistentStreamSubscription_ErrIfSubscriptionDoesNotExist", func(t *testing.T) { psUpdateMissing(t, emptyDB) })
	t.Run("deletePersistentStreamSubscription", func(t *testing.T) { psDelete(t, emptyDB) })
	t.Run("deletePersistentSubscription_ErrIfSubscriptionDoesNotExist", func(t *testing.T) { psDeleteMissing(t, emptyDB) })
	t.Run("testPersistentSubscriptionClosing", func(t *testing.T) { psClosing(t, populatedDB) })
	t.Run("persistentAllCreate", func(t *testing.T) { psAllCreate(t, emptyDB) })
	t.Run("persistentAllUpdate", func(t *testing.T) { psAllUpdate(t, emptyDB) })
	t.Run("persistentAllDelete", func(t *testing.T) { psAllDelete(t, emptyDB) })
	t.Run("persistentListAllSubs", func(t *testing.T) { psListAll(t, emptyDB, nil) })
	t.Run("persistentListAllSubsWithCredentialsOverride", func(t *testing.T) { psListAll(t, emptyDB, adminCredentials) })
	t.Run("persistentReplayParkedMessages", func(t *testing.T) { psReplayParked(t, emptyDB, nil, true) })
	t.Run("persistentReplayParkedMessagesWithCredentialsOverride", func(t *testing.T) { psReplayParked(t, emptyDB, adminCredentials, false) })
	t.Run("persistentReplayParkedMessagesToAll", func(t *testing.T) { psReplayParkedToAll(t, emptyDB) })
	t.Run("persistentListSubsForStream", func(t *testing.T) { psListForStream(t, emptyDB) })
	t.Run("persistentListSubsToAll", func(t *testing.T) { psListToAll(t, emptyDB) })
	t.Run("persistentGetInfo", func(t *testing.T) { psGetInfo(t, emptyDB) })
	t.Run("persistentGetInfoWithCredentialsOverride", func(t *testing.T) { psGetInfoCredentials(t, emptyDB) })
	t.Run("persistentGetInfoToAll", func(t *testing.T) { psGetInfoToAll(t, emptyDB) })
	t.Run("persistentGetInfoEncoding", func(t *testing.T) { psGetInfoEncoding(t, emptyDB) })
	t.Run("persistentRestartSubsystem", func(t *testing.T) { psRestartSubsystem(t, emptyDB) })
}

var adminCredentials = &esdb.Credentials{Login: "admin", Password: "changeit"}

// testEvent is the client tests' createTestEvent: binary data and metadata.
func testEvent() esdb.EventData {
	return esdb.EventData{EventType: "TestEvent", ContentType: esdb.ContentTypeBinary, EventID: uuid.New(),
		Data: []byte{0xb, 0xe, 0xe, 0xf}, Metadata: []byte{0xd, 0xe, 0xa, 0xd}}
}

func testEvents(n int) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = testEvent()
	}
	return out
}

// genName stands for the client tests' NAME_GENERATOR.Generate().
func genName() string { return "ps-" + uuid.NewString() }

func pushEvents(tb testing.TB, db *esdb.Client, stream string, evs ...esdb.EventData) {
	tb.Helper()
	if _, err := db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, evs...); err != nil {
		tb.Fatal(err)
	}
}

func mustNoError(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// recvEvent is Recv().EventAppeared.Event, failing instead of panicking
// when the subscription dropped.
func recvEvent(tb testing.TB, sub *esdb.PersistentSubscription) *esdb.ResolvedEvent {
	tb.Helper()
	ev := sub.Recv()
	if ev.EventAppeared == nil {
		tb.Fatalf("persistent subscription dropped: %v", ev.SubscriptionDropped.Error)
	}
	return ev.EventAppeared.Event
}

// waitWithTimeout is the client tests' helper: true when it timed out.
func waitWithTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return false
	case <-time.After(d):
		return true
	}
}

func psReadExistingStreamAck(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvents(3)...)
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}}))
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 2})
	mustNoError(t, err)
	defer sub.Close()
	first := recvEvent(t, sub)
	if second := recvEvent(t, sub); first == nil || second == nil {
		t.Fatal("events are nil")
	}
	// With a buffer of two, the third event comes only after an ack.
	mustNoError(t, sub.Ack(first))
	if third := sub.Recv(); third == nil {
		t.Fatal("no third event")
	}
}

func psExistingStreamFromBeginning(t *testing.T, db *esdb.Client) {
	evs := testEvents(10)
	stream := genName()
	pushEvents(t, db, stream, evs...)
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}}))
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	ev := recvEvent(t, sub)
	if ev.OriginalEvent().EventNumber != 0 || ev.OriginalEvent().EventID != evs[0].EventID {
		t.Fatalf("first event %d %s, want 0 %s", ev.OriginalEvent().EventNumber, ev.OriginalEvent().EventID, evs[0].EventID)
	}
}

func psNonExistingStreamFromBeginning(t *testing.T, db *esdb.Client) {
	evs := testEvents(10)
	stream := genName()
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}}))
	pushEvents(t, db, stream, evs...)
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	ev := recvEvent(t, sub)
	if ev.OriginalEvent().EventNumber != 0 || ev.OriginalEvent().EventID != evs[0].EventID {
		t.Fatalf("first event %d %s, want 0 %s", ev.OriginalEvent().EventNumber, ev.OriginalEvent().EventID, evs[0].EventID)
	}
}

func psExistingStreamFromEndAppend(t *testing.T, db *esdb.Client) {
	evs := testEvents(11)
	stream := genName()
	pushEvents(t, db, stream, evs[:10]...)
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.End{}}))
	_, err := db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(9)}, evs[10:]...)
	mustNoError(t, err)
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	ev := recvEvent(t, sub)
	if ev.OriginalEvent().EventNumber != 10 || ev.OriginalEvent().EventID != evs[10].EventID {
		t.Fatalf("first event %d %s, want 10 %s", ev.OriginalEvent().EventNumber, ev.OriginalEvent().EventID, evs[10].EventID)
	}
}

func psExistingStreamFromEndNoEvents(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvents(10)...)
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.End{}}))
	// The original waits 5 s for an event that must not come; -short waits 1 s.
	wait := 5 * time.Second
	if testing.Short() {
		wait = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	sub, err := db.SubscribeToPersistentSubscription(ctx, stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	got := make(chan struct{}, 1)
	go func() {
		if ev := sub.Recv(); ev.EventAppeared != nil {
			got <- struct{}{}
		}
	}()
	select {
	case <-ctx.Done():
	case <-got:
		t.Fatal("a group from the end of a stream received one of its old events")
	}
}

func psNonExistingStreamFromTwo(t *testing.T, db *esdb.Client) {
	evs := testEvents(4)
	stream := genName()
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Revision(2)}))
	pushEvents(t, db, stream, evs...)
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	ev := recvEvent(t, sub)
	if ev.OriginalEvent().EventNumber != 2 || ev.OriginalEvent().EventID != evs[2].EventID {
		t.Fatalf("first event %d %s, want 2 %s", ev.OriginalEvent().EventNumber, ev.OriginalEvent().EventID, evs[2].EventID)
	}
}

// psExistingStreamFrom ports the three "StartFrom N" scenarios: n events,
// all but the last appended before the group from revision from is
// created, the last one after; the first event received is want.
func psExistingStreamFrom(t *testing.T, db *esdb.Client, from uint64, n int, want int) {
	evs := testEvents(n)
	stream := genName()
	pushEvents(t, db, stream, evs[:n-1]...)
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Revision(from)}))
	_, err := db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(uint64(n - 2))}, evs[n-1])
	mustNoError(t, err)
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	ev := recvEvent(t, sub)
	if ev.OriginalEvent().EventNumber != uint64(want) || ev.OriginalEvent().EventID != evs[want].EventID {
		t.Fatalf("first event %d %s, want %d %s", ev.OriginalEvent().EventNumber, ev.OriginalEvent().EventID, want, evs[want].EventID)
	}
}

func psReadExistingStreamNack(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvents(3)...)
	_ = db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}})
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, "Group 1", esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 2})
	mustNoError(t, err)
	defer sub.Close()
	first := recvEvent(t, sub)
	if second := recvEvent(t, sub); first == nil || second == nil {
		t.Fatal("events are nil")
	}
	// With a buffer of two, the third event comes only after a nack.
	mustNoError(t, sub.Nack("test reason", esdb.NackActionPark, first))
	if third := sub.Recv(); third == nil {
		t.Fatal("no third event")
	}
}

func psToAllRead(t *testing.T, db *esdb.Client) {
	// Test data: a fresh embedded store's $all may hold fewer than the three
	// events this needs (an EventStoreDB container has its own).
	pushEvents(t, db, genName(), testEvents(3)...)
	group := "Group 1-" + uuid.NewString() // originally "Group 1"
	mustNoError(t, db.CreatePersistentSubscriptionToAll(context.Background(), group, esdb.PersistentAllSubscriptionOptions{StartFrom: esdb.Start{}}))
	sub, err := db.SubscribeToPersistentSubscriptionToAll(context.Background(), group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 2})
	mustNoError(t, err)
	defer sub.Close()
	first := recvEvent(t, sub)
	if second := recvEvent(t, sub); first == nil || second == nil {
		t.Fatal("events are nil")
	}
	mustNoError(t, sub.Ack(first))
	third := recvEvent(t, sub)
	mustNoError(t, sub.Ack(third))
}

func psCreate(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvent())
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{}))
}

func psCreateMessageTimeoutZero(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvent())
	settings := esdb.SubscriptionSettingsDefault()
	settings.MessageTimeout = 0
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{Settings: &settings}))
}

func psCreateStreamNotExists(t *testing.T, db *esdb.Client) {
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), genName(), "Group 1", esdb.PersistentStreamSubscriptionOptions{}))
}

func psCreateFailsIfExists(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvent())
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{}))
	err := db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{})
	if code(err) != esdb.ErrorCodeResourceAlreadyExists {
		t.Fatalf("creating it twice: got %v (code %d), want resource already exists", err, code(err))
	}
}

func psCreateAfterDeleting(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvent())
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{}))
	mustNoError(t, db.DeletePersistentSubscription(context.Background(), stream, "Group 1", esdb.DeletePersistentSubscriptionOptions{}))
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{}))
}

func psUpdate(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvent())
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{}))
	s := esdb.SubscriptionSettingsDefault()
	s.HistoryBufferSize++
	s.ConsumerStrategyName = esdb.ConsumerStrategyDispatchToSingle
	s.MaxSubscriberCount++
	s.ReadBatchSize++
	s.CheckpointAfter++
	s.CheckpointUpperBound++
	s.CheckpointLowerBound++
	s.LiveBufferSize++
	s.MaxRetryCount++
	s.MessageTimeout++
	s.ExtraStatistics = !s.ExtraStatistics
	s.ResolveLinkTos = !s.ResolveLinkTos
	mustNoError(t, db.UpdatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{Settings: &s}))
}

func psUpdateMissing(t *testing.T, db *esdb.Client) {
	if err := db.UpdatePersistentSubscription(context.Background(), genName(), "Group 1", esdb.PersistentStreamSubscriptionOptions{}); err == nil {
		t.Fatal("updating a group that does not exist succeeded")
	}
}

func psDelete(t *testing.T, db *esdb.Client) {
	stream := genName()
	pushEvents(t, db, stream, testEvent())
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, "Group 1", esdb.PersistentStreamSubscriptionOptions{}))
	mustNoError(t, db.DeletePersistentSubscription(context.Background(), stream, "Group 1", esdb.DeletePersistentSubscriptionOptions{}))
}

func psDeleteMissing(t *testing.T, db *esdb.Client) {
	err := db.DeletePersistentSubscription(context.Background(), genName(), "a", esdb.DeletePersistentSubscriptionOptions{})
	if code(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("deleting a group that does not exist: got %v (code %d), want resource not found", err, code(err))
	}
}

func psClosing(t *testing.T, db *esdb.Client) {
	// The original uses stream "dataset20M-0" of the pre-loaded database;
	// this writes twenty events to a stream of its own.
	stream := "dataset20M-0-" + uuid.NewString()
	pushEvents(t, db, stream, testEvents(20)...)
	group := "Group 1"
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, group, esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}}))
	var received, dropped sync.WaitGroup
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 2})
	mustNoError(t, err)
	received.Add(10)
	dropped.Add(1)
	// The original acks while the test closes; gRPC forbids sending and
	// closing a stream at once (the race detector says so), so both hold sendMu.
	var sendMu sync.Mutex
	go func() {
		current := 1
		for {
			ev := sub.Recv()
			if ev.EventAppeared != nil {
				if current <= 10 {
					received.Done()
					current++
				}
				sendMu.Lock()
				_ = sub.Ack(ev.EventAppeared.Event)
				sendMu.Unlock()
				continue
			}
			if ev.SubscriptionDropped != nil {
				dropped.Done()
				return
			}
		}
	}()
	if waitWithTimeout(&received, 5*time.Second) {
		t.Fatal("timed out waiting for initial set of events")
	}
	sendMu.Lock()
	sub.Close()
	sendMu.Unlock()
	if waitWithTimeout(&dropped, 5*time.Second) {
		t.Fatal("timed out waiting for dropped event")
	}
}

func psAllCreate(t *testing.T, db *esdb.Client) {
	mustNoError(t, db.CreatePersistentSubscriptionToAll(context.Background(), genName(), esdb.PersistentAllSubscriptionOptions{}))
}

func psAllUpdate(t *testing.T, db *esdb.Client) {
	group := genName()
	mustNoError(t, db.CreatePersistentSubscriptionToAll(context.Background(), group, esdb.PersistentAllSubscriptionOptions{}))
	s := esdb.SubscriptionSettingsDefault()
	s.ResolveLinkTos = true
	mustNoError(t, db.UpdatePersistentSubscriptionToAll(context.Background(), group, esdb.PersistentAllSubscriptionOptions{Settings: &s}))
}

func psAllDelete(t *testing.T, db *esdb.Client) {
	group := genName()
	mustNoError(t, db.CreatePersistentSubscriptionToAll(context.Background(), group, esdb.PersistentAllSubscriptionOptions{}))
	mustNoError(t, db.DeletePersistentSubscriptionToAll(context.Background(), group, esdb.DeletePersistentSubscriptionOptions{}))
}

func psListAll(t *testing.T, db *esdb.Client, creds *esdb.Credentials) {
	group, stream := genName(), genName()
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, group, esdb.PersistentStreamSubscriptionOptions{}))
	subs, err := db.ListAllPersistentSubscriptions(context.Background(), esdb.ListPersistentSubscriptionsOptions{Authenticated: creds})
	mustNoError(t, err)
	if creds != nil {
		return // the credentials-override original only checks there is no error
	}
	for _, s := range subs {
		if s.EventSource == stream && s.GroupName == group {
			return
		}
	}
	t.Fatalf("the new group is not among the %d listed", len(subs))
}

// waitParked stands for the originals' 5 s sleep ("we let the server the
// time to park those events"): it polls until n events are parked.
func waitParked(tb testing.TB, db *esdb.Client, stream *string, group string, n int64) {
	tb.Helper()
	eventually.NoError(tb, 30*time.Second, fmt.Sprintf("%d events to be parked", n), func() error {
		var info *esdb.PersistentSubscriptionInfo
		var err error
		if stream == nil {
			info, err = db.GetPersistentSubscriptionInfoToAll(context.Background(), group, esdb.GetPersistentSubscriptionOptions{})
		} else {
			info, err = db.GetPersistentSubscriptionInfo(context.Background(), *stream, group, esdb.GetPersistentSubscriptionOptions{})
		}
		mustNoError(tb, err)
		if info.Stats.ParkedMessagesCount < n {
			return fmt.Errorf("%d parked", info.Stats.ParkedMessagesCount)
		}
		return nil
	})
}

func psReplayParked(t *testing.T, db *esdb.Client, creds *esdb.Credentials, thenReceive bool) {
	group, stream := genName(), genName()
	const eventCount = 2
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, group, esdb.PersistentStreamSubscriptionOptions{}))
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, group, esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	_, err = db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{}, testEvents(eventCount)...)
	mustNoError(t, err)
	for i := 0; i < eventCount; {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatalf("dropped: %v", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			mustNoError(t, sub.Nack("because reasons", esdb.NackActionPark, ev.EventAppeared.Event))
			i++
		}
	}
	waitParked(t, db, &stream, group, eventCount)
	mustNoError(t, db.ReplayParkedMessages(context.Background(), stream, group, esdb.ReplayParkedMessagesOptions{Authenticated: creds}))
	if !thenReceive {
		return // the credentials-override original stops here
	}
	for i := 0; i < eventCount; {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatalf("dropped: %v", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			mustNoError(t, sub.Ack(ev.EventAppeared.Event))
			i++
		}
	}
}

func psReplayParkedToAll(t *testing.T, db *esdb.Client) {
	stream, group := genName(), genName()
	const eventCount = 2
	mustNoError(t, db.CreatePersistentSubscriptionToAll(context.Background(), group, esdb.PersistentAllSubscriptionOptions{}))
	sub, err := db.SubscribeToPersistentSubscriptionToAll(context.Background(), group, esdb.SubscribeToPersistentSubscriptionOptions{})
	mustNoError(t, err)
	defer sub.Close()
	_, err = db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{}, testEvents(eventCount)...)
	mustNoError(t, err)
	for i := 0; i < eventCount; {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatalf("dropped: %v", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			if ev.EventAppeared.Event.OriginalEvent().StreamID == stream {
				mustNoError(t, sub.Nack("because reasons", esdb.NackActionPark, ev.EventAppeared.Event))
				i++
			} else {
				mustNoError(t, sub.Ack(ev.EventAppeared.Event))
			}
		}
	}
	waitParked(t, db, nil, group, eventCount)
	mustNoError(t, db.ReplayParkedMessagesToAll(context.Background(), group, esdb.ReplayParkedMessagesOptions{}))
	for i := 0; i < eventCount; {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatalf("dropped: %v", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			mustNoError(t, sub.Ack(ev.EventAppeared.Event))
			if ev.EventAppeared.Event.Event.StreamID == stream {
				i++
			}
		}
	}
}

func psListForStream(t *testing.T, db *esdb.Client) {
	stream := genName()
	groups := map[string]bool{}
	for i := 0; i < 2; i++ {
		g := genName()
		mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, g, esdb.PersistentStreamSubscriptionOptions{}))
		groups[g] = true
	}
	subs, err := db.ListPersistentSubscriptionsForStream(context.Background(), stream, esdb.ListPersistentSubscriptionsOptions{})
	mustNoError(t, err)
	found := 0
	for _, s := range subs {
		if s.EventSource == stream && groups[s.GroupName] {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("found %d of the stream's 2 groups among %d listed", found, len(subs))
	}
}

func psListToAll(t *testing.T, db *esdb.Client) {
	groups := map[string]bool{}
	for i := 0; i < 2; i++ {
		g := genName()
		mustNoError(t, db.CreatePersistentSubscriptionToAll(context.Background(), g, esdb.PersistentAllSubscriptionOptions{}))
		groups[g] = true
	}
	subs, err := db.ListPersistentSubscriptionsToAll(context.Background(), esdb.ListPersistentSubscriptionsOptions{})
	mustNoError(t, err)
	found := 0
	for _, s := range subs {
		if groups[s.GroupName] {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("found %d of the 2 $all groups among %d listed", found, len(subs))
	}
}

func psGetInfo(t *testing.T, db *esdb.Client) {
	stream, group := genName(), genName()
	s := esdb.SubscriptionSettingsDefault()
	s.CheckpointLowerBound = 1
	s.CheckpointUpperBound = 1
	_, err := db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{}, testEvents(50)...)
	mustNoError(t, err)
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, group, esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{}, Settings: &s}))
	var received sync.WaitGroup
	sub, err := db.SubscribeToPersistentSubscription(context.Background(), stream, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 2})
	mustNoError(t, err)
	received.Add(1)
	go func() {
		current := 1
		for {
			ev := sub.Recv()
			if ev.EventAppeared != nil {
				current++
				_ = sub.Ack(ev.EventAppeared.Event)
				if current >= 10 {
					received.Done()
					return
				}
			}
			if ev.SubscriptionDropped != nil {
				return
			}
		}
	}()
	if waitWithTimeout(&received, 5*time.Second) {
		t.Fatal("timed out waiting for initial set of events")
	}
	info, err := db.GetPersistentSubscriptionInfo(context.Background(), stream, group, esdb.GetPersistentSubscriptionOptions{})
	mustNoError(t, err)
	if info.EventSource != stream || info.GroupName != group {
		t.Fatalf("info for %s/%s, want %s/%s", info.EventSource, info.GroupName, stream, group)
	}
	sub.Close()
}

func psGetInfoCredentials(t *testing.T, db *esdb.Client) {
	stream, group := genName(), genName()
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, group, esdb.PersistentStreamSubscriptionOptions{}))
	info, err := db.GetPersistentSubscriptionInfo(context.Background(), stream, group, esdb.GetPersistentSubscriptionOptions{Authenticated: adminCredentials})
	mustNoError(t, err)
	if info.EventSource != stream || info.GroupName != group {
		t.Fatalf("info for %s/%s, want %s/%s", info.EventSource, info.GroupName, stream, group)
	}
}

func psGetInfoToAll(t *testing.T, db *esdb.Client) {
	group := genName()
	mustNoError(t, db.CreatePersistentSubscriptionToAll(context.Background(), group, esdb.PersistentAllSubscriptionOptions{}))
	info, err := db.GetPersistentSubscriptionInfoToAll(context.Background(), group, esdb.GetPersistentSubscriptionOptions{})
	mustNoError(t, err)
	if info.GroupName != group {
		t.Fatalf("info for group %s, want %s", info.GroupName, group)
	}
}

func psGetInfoEncoding(t *testing.T, db *esdb.Client) {
	stream, group := fmt.Sprintf("/%s/foo", genName()), fmt.Sprintf("/%s/foo", genName())
	mustNoError(t, db.CreatePersistentSubscription(context.Background(), stream, group, esdb.PersistentStreamSubscriptionOptions{}))
	info, err := db.GetPersistentSubscriptionInfo(context.Background(), stream, group, esdb.GetPersistentSubscriptionOptions{})
	mustNoError(t, err)
	if info.EventSource != stream || info.GroupName != group {
		t.Fatalf("info for %s/%s, want %s/%s", info.EventSource, info.GroupName, stream, group)
	}
}

func psRestartSubsystem(t *testing.T, db *esdb.Client) {
	mustNoError(t, db.RestartPersistentSubscriptionSubsystem(context.Background(), esdb.RestartPersistentSubscriptionSubsystemOptions{}))
}
