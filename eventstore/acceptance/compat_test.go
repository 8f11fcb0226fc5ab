package acceptance

import (
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

// The behaviours in this file differed from EventStoreDB 24.10 when a
// second official client (another language) was run against the embedded
// store; each test holds the embedded store to EventStoreDB's answer.

// TestReadFromHugeRevisions: the client accepts any uint64 as a revision.
// 2^64-1 is EventStoreDB's End; a revision beyond the last event reads
// nothing forwards and the whole stream backwards, and never wraps to 0.
func TestReadFromHugeRevisions(t *testing.T) {
	c := client(t)
	s := name("huge")
	appendOK(t, c, s, esdb.NoStream{}, events(3)...)
	tests := []struct {
		name string
		opts esdb.ReadStreamOptions
		want []uint64 // revisions
	}{
		{"forwards from 2^63", esdb.ReadStreamOptions{From: esdb.Revision(1 << 63)}, nil},
		{"forwards from 2^64-1", esdb.ReadStreamOptions{From: esdb.Revision(math.MaxUint64)}, nil},
		{"forwards from 2^63-1", esdb.ReadStreamOptions{From: esdb.Revision(1<<63 - 1)}, nil},
		{"forwards from 3", esdb.ReadStreamOptions{From: esdb.Revision(3)}, nil},
		{"backwards from 2^63", esdb.ReadStreamOptions{From: esdb.Revision(1 << 63), Direction: esdb.Backwards}, []uint64{2, 1, 0}},
		{"backwards from 2^64-1", esdb.ReadStreamOptions{From: esdb.Revision(math.MaxUint64), Direction: esdb.Backwards}, []uint64{2, 1, 0}},
		{"forwards from 1", esdb.ReadStreamOptions{From: esdb.Revision(1)}, []uint64{1, 2}},
	}
	for _, tt := range tests {
		evs, err := readAll(t, c, s, tt.opts, 10)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []uint64
		for _, e := range evs {
			got = append(got, e.EventNumber)
		}
		if !equalRevisions(got, tt.want) {
			t.Errorf("%s: got revisions %v, want %v", tt.name, got, tt.want)
		}
	}
}

func equalRevisions(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSubscribeFromHugeRevisions: a stream subscription from 2^64-1 is one
// from the end (only new events); one from 2^63 starts after every
// revision a stream can reach, so it never replays the stream from 0.
func TestSubscribeFromHugeRevisions(t *testing.T) {
	c := client(t)
	s := name("hugesub")
	appendOK(t, c, s, esdb.NoStream{}, events(3)...)
	fromEnd, err := c.SubscribeToStream(ctxT(t), s, esdb.SubscribeToStreamOptions{From: esdb.Revision(math.MaxUint64)})
	if err != nil {
		t.Fatal(err)
	}
	defer fromEnd.Close()
	beyond, err := c.SubscribeToStream(ctxT(t), s, esdb.SubscribeToStreamOptions{From: esdb.Revision(1 << 63)})
	if err != nil {
		t.Fatal(err)
	}
	defer beyond.Close()
	if !awaitCaughtUp(t, fromEnd) || !awaitCaughtUp(t, beyond) {
		t.Fatal("a subscription from a huge revision replayed events or dropped before catching up")
	}
	appendOK(t, c, s, esdb.Revision(2), event("Live", `{}`))
	evs, _, _ := collect(t, fromEnd, 1, func(*esdb.RecordedEvent) bool { return true })
	if evs[0].EventNumber != 3 {
		t.Fatalf("from 2^64-1 (End) the first event is revision %d, want the new one, 3", evs[0].EventNumber)
	}
	// The new event reached the other subscriber; the one after 2^63 must
	// not deliver it (the store hands live events to all subscribers at once).
	got := make(chan *esdb.SubscriptionEvent, 1)
	go func() { got <- beyond.Recv() }()
	select {
	case ev := <-got:
		if ev.EventAppeared != nil {
			t.Fatalf("the subscription after revision 2^63 delivered revision %d", ev.EventAppeared.Event.EventNumber)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

// TestResolveLinkTos: with resolveLinkTos, a link ($> with data
// "<revision>@<stream>") comes back as the event it points to with the
// link attached, on stream and $all reads and subscriptions; a link that
// cannot be resolved comes back alone; without the option the link is the
// event.
func TestResolveLinkTos(t *testing.T) {
	c := client(t)
	target := name("target")
	links := name("links")
	evs := events(2)
	appendOK(t, c, target, esdb.NoStream{}, evs...)
	link := func(data string) esdb.EventData {
		return esdb.EventData{EventID: uuid.New(), EventType: "$>", ContentType: esdb.ContentTypeBinary, Data: []byte(data)}
	}
	appendOK(t, c, links, esdb.NoStream{}, link("1@"+target), link("0@"+target), link("9@"+target), link("not a link"))
	want := []uuid.UUID{evs[1].EventID, evs[0].EventID, uuid.Nil, uuid.Nil} // Nil: unresolved

	check := func(how string, got []*esdb.ResolvedEvent) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", how, len(got), len(want))
		}
		for i, ev := range got {
			if ev.Link == nil || ev.Link.EventType != "$>" || ev.Link.StreamID != links || ev.Link.EventNumber != uint64(i) {
				t.Fatalf("%s: event %d: link %+v, want the link %s@%d", how, i, ev.Link, links, i)
			}
			switch {
			case want[i] == uuid.Nil && ev.Event != nil:
				t.Fatalf("%s: event %d: the unresolvable link %q resolved to %s@%d", how, i, ev.Link.Data, ev.Event.StreamID, ev.Event.EventNumber)
			case want[i] != uuid.Nil && (ev.Event == nil || ev.Event.EventID != want[i] || ev.Event.StreamID != target):
				t.Fatalf("%s: event %d: resolved to %+v, want %s of %s", how, i, ev.Event, want[i], target)
			}
		}
	}

	// Stream read, with and without resolution.
	rs, err := c.ReadStream(ctxT(t), links, esdb.ReadStreamOptions{ResolveLinkTos: true}, 10)
	if err != nil {
		t.Fatal(err)
	}
	check("stream read", drain(t, rs))
	plain, err := c.ReadStream(ctxT(t), links, esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range drain(t, plain) {
		if ev.Link != nil || ev.Event.EventType != "$>" {
			t.Fatalf("without resolveLinkTos: link %+v, event type %q, want the raw link as the event", ev.Link, ev.Event.EventType)
		}
	}

	// $all read: the link events among everything else.
	all, err := c.ReadAll(ctxT(t), esdb.ReadAllOptions{ResolveLinkTos: true}, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	var fromAll []*esdb.ResolvedEvent
	for _, ev := range drain(t, all) {
		if ev.OriginalEvent().StreamID == links {
			fromAll = append(fromAll, ev)
		}
	}
	check("$all read", fromAll)

	// Stream and $all subscriptions.
	sub, err := c.SubscribeToStream(ctxT(t), links, esdb.SubscribeToStreamOptions{From: esdb.Start{}, ResolveLinkTos: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	check("stream subscription", collectResolved(t, sub, len(want)))
	allSub, err := c.SubscribeToAll(ctxT(t), esdb.SubscribeToAllOptions{From: esdb.Start{}, ResolveLinkTos: true,
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{links}}})
	if err != nil {
		t.Fatal(err)
	}
	defer allSub.Close()
	check("$all subscription", collectResolved(t, allSub, len(want)))
}

func drain(tb testing.TB, rs *esdb.ReadStream) []*esdb.ResolvedEvent {
	tb.Helper()
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, ev)
	}
}

func collectResolved(tb testing.TB, sub *esdb.Subscription, n int) []*esdb.ResolvedEvent {
	tb.Helper()
	stuck := time.AfterFunc(30*time.Second, func() { sub.Close() })
	defer stuck.Stop()
	var out []*esdb.ResolvedEvent
	for len(out) < n {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			out = append(out, ev.EventAppeared)
		case ev.SubscriptionDropped != nil:
			tb.Fatalf("subscription dropped after %d of %d events: %v", len(out), n, ev.SubscriptionDropped.Error)
		}
	}
	return out
}

// TestMetadataAfterSoftDelete: metadata written after a soft delete keeps
// the deleted events truncated ($tb), and the stream continues after them.
func TestMetadataAfterSoftDelete(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	s := name("softmeta")
	appendOK(t, c, s, esdb.NoStream{}, events(2)...)
	if _, err := c.DeleteStream(ctx, s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
		t.Fatal(err)
	}
	var m esdb.StreamMetadata
	m.SetMaxCount(100)
	m.AddCustomProperty("owner", "ordo")
	if _, err := c.SetStreamMetadata(ctx, s, esdb.AppendToStreamOptions{}, m); err != nil {
		t.Fatal(err)
	}
	evs, err := readAll(t, c, s, esdb.ReadStreamOptions{}, 10)
	if err != nil && code(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Fatalf("after new metadata the soft-deleted stream shows %d events again (first revision %d), want none", len(evs), evs[0].EventNumber)
	}
	got, err := c.GetStreamMetadata(ctx, s, esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tb := got.TruncateBefore(); tb == nil || *tb != 2 {
		t.Fatalf("metadata after a soft delete: $tb %v, want 2", tb)
	}
	if mc := got.MaxCount(); mc == nil || *mc != 100 || got.CustomProperty("owner") != "ordo" {
		t.Fatalf("metadata after a soft delete lost what was written: maxCount %v, owner %v", got.MaxCount(), got.CustomProperty("owner"))
	}
	appendOK(t, c, s, esdb.Any{}, event("Again", `{}`))
	evs, err = readAll(t, c, s, esdb.ReadStreamOptions{}, 10)
	if err != nil || len(evs) != 1 || evs[0].EventNumber != 2 {
		t.Fatalf("after recreating, the stream shows %d events (%v), want only revision 2", len(evs), err)
	}
}

// TestMetadataOfTombstonedStream: the metadata of a tombstoned stream is
// deleted with it; reading it answers StreamDeleted, not empty metadata.
func TestMetadataOfTombstonedStream(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	s := name("tombmeta")
	appendOK(t, c, s, esdb.NoStream{}, events(1)...)
	var m esdb.StreamMetadata
	m.SetMaxCount(5)
	if _, err := c.SetStreamMetadata(ctx, s, esdb.AppendToStreamOptions{}, m); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TombstoneStream(ctx, s, esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetStreamMetadata(ctx, s, esdb.ReadStreamOptions{})
	if code(err) != esdb.ErrorCodeStreamDeleted {
		t.Fatalf("metadata of a tombstoned stream: got %+v, %v; want stream deleted", got, err)
	}
}

// TestEmptyAppend: an append with options and no events succeeds with the
// stream's revision and a real position; a call with no message at all is
// an invalid argument.
func TestEmptyAppend(t *testing.T) {
	url := endpoint(t)
	c := esdbtest.Connect(t, url)
	s := name("empty")
	first := appendOK(t, c, s, esdb.NoStream{}, events(2)...)
	for _, exp := range []esdb.ExpectedRevision{esdb.Any{}, esdb.Revision(1), esdb.StreamExists{}} {
		r, err := c.AppendToStream(ctxT(t), s, esdb.AppendToStreamOptions{ExpectedRevision: exp})
		if err != nil {
			t.Fatalf("empty append (%T): %v", exp, err)
		}
		if r.NextExpectedVersion != 1 || r.CommitPosition < first.CommitPosition || r.CommitPosition != r.PreparePosition {
			t.Fatalf("empty append (%T): revision %d at {%d,%d}, want revision 1 at a position >= %d",
				exp, r.NextExpectedVersion, r.CommitPosition, r.PreparePosition, first.CommitPosition)
		}
	}

	conn, err := grpc.NewClient(hostOf(t, url), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call, err := streams.NewStreamsClient(conn).Append(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an append call without any message: got %v, want InvalidArgument", err)
	}
}

// hostOf is the host:port of an esdb:// connection string.
func hostOf(tb testing.TB, url string) string {
	tb.Helper()
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		tb.Fatal(err)
	}
	if len(cfg.Address) == 0 {
		tb.Fatalf("no host in %s", url)
	}
	return cfg.Address
}
