package acceptance

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

func appendOK(tb testing.TB, c *esdb.Client, stream string, exp esdb.ExpectedRevision, evs ...esdb.EventData) *esdb.WriteResult {
	tb.Helper()
	r, err := c.AppendToStream(ctxT(tb), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
	if err != nil {
		tb.Fatalf("append to %s: %v", stream, err)
	}
	return r
}

func readAll(tb testing.TB, c *esdb.Client, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.RecordedEvent, error) {
	tb.Helper()
	rs, err := c.ReadStream(ctxT(tb), stream, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev.Event)
	}
}

func TestExpectedRevisionForms(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	s := name("exp")
	tests := []struct {
		name    string
		exp     esdb.ExpectedRevision
		wantErr string // "" means success; else the WEV details
	}{
		{"stream exists on a new stream", esdb.StreamExists{}, "expecting 'stream_exists' but got 'no_stream'"},
		{"exact on a new stream", esdb.Revision(0), "expecting '0' but got 'no_stream'"},
		{"no stream on a new stream", esdb.NoStream{}, ""},
		{"no stream again", esdb.NoStream{}, "expecting 'no_stream' but got '0'"},
		{"exact current", esdb.Revision(0), ""},
		{"exact stale", esdb.Revision(0), "expecting '0' but got '1'"},
		{"exact ahead", esdb.Revision(7), "expecting '7' but got '1'"},
		{"stream exists", esdb.StreamExists{}, ""},
		{"any", esdb.Any{}, ""},
	}
	for _, tt := range tests {
		_, err := c.AppendToStream(ctx, s, esdb.AppendToStreamOptions{ExpectedRevision: tt.exp}, event("Thing", `{}`))
		if tt.wantErr == "" {
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			continue
		}
		if code(err) != esdb.ErrorCodeWrongExpectedVersion || !strings.Contains(err.Error(), tt.wantErr) {
			t.Fatalf("%s: got %v, want wrong expected version %q", tt.name, err, tt.wantErr)
		}
	}
	r := appendOK(t, c, s, esdb.Revision(3), event("Thing", `{}`))
	if r.NextExpectedVersion != 4 || r.CommitPosition == 0 || r.CommitPosition != r.PreparePosition {
		t.Fatalf("write result %+v: want revision 4 and commit == prepare > 0", r)
	}
}

func TestIdempotentReappend(t *testing.T) {
	c := client(t)
	s := name("idem")
	evs := events(3)
	first := appendOK(t, c, s, esdb.NoStream{}, evs...)
	for _, exp := range []esdb.ExpectedRevision{esdb.NoStream{}, esdb.Any{}} {
		again := appendOK(t, c, s, exp, evs...)
		if *again != *first {
			t.Fatalf("re-append with %T returned %+v, want the original %+v", exp, again, first)
		}
	}
	_, err := c.AppendToStream(ctxT(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, append(evs[:2:2], event("Other", `{}`))...)
	if code(err) != esdb.ErrorCodeWrongExpectedVersion {
		t.Fatalf("partially matching re-append: got %v, want wrong expected version", err)
	}
	got, err := readAll(t, c, s, esdb.ReadStreamOptions{}, 100)
	if err != nil || len(got) != 3 {
		t.Fatalf("stream holds %d events (%v), want 3", len(got), err)
	}
}

func TestReadStreamFromEveryStart(t *testing.T) {
	c := client(t)
	s := name("read")
	appendOK(t, c, s, esdb.NoStream{}, events(10)...)
	tests := []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  string
	}{
		{"forwards from start", esdb.ReadStreamOptions{From: esdb.Start{}}, 3, "[0 1 2]"},
		{"forwards from revision", esdb.ReadStreamOptions{From: esdb.Revision(7)}, 10, "[7 8 9]"},
		{"forwards from end", esdb.ReadStreamOptions{From: esdb.End{}}, 10, "[]"},
		{"backwards from end", esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 3, "[9 8 7]"},
		{"backwards from revision", esdb.ReadStreamOptions{From: esdb.Revision(2), Direction: esdb.Backwards}, 10, "[2 1 0]"},
		{"backwards from start", esdb.ReadStreamOptions{From: esdb.Start{}, Direction: esdb.Backwards}, 10, "[0]"},
		{"forwards past the end", esdb.ReadStreamOptions{From: esdb.Revision(50)}, 10, "[]"},
	}
	for _, tt := range tests {
		evs, err := readAll(t, c, s, tt.opts, tt.count)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		revs := make([]uint64, len(evs))
		for i, e := range evs {
			revs[i] = e.EventNumber
			if e.Position.Commit == 0 || e.CreatedDate.IsZero() || e.ContentType != "application/json" {
				t.Fatalf("%s: event %d lacks position, created or content type: %+v", tt.name, i, e)
			}
		}
		if got := fmt.Sprint(revs); got != tt.want {
			t.Fatalf("%s: revisions %s, want %s", tt.name, got, tt.want)
		}
	}
	if _, err := readAll(t, c, name("missing"), esdb.ReadStreamOptions{}, 10); code(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("reading a missing stream: got %v, want resource not found", err)
	}
}

func TestAllOrderingAndPositions(t *testing.T) {
	c := client(t)
	a, b := name("all-a"), name("all-b")
	wa := appendOK(t, c, a, esdb.NoStream{}, events(2)...)
	wb := appendOK(t, c, b, esdb.NoStream{}, events(3)...)
	if wb.CommitPosition <= wa.CommitPosition {
		t.Fatalf("positions do not increase: %d then %d", wa.CommitPosition, wb.CommitPosition)
	}
	rs, err := c.ReadAll(ctxT(t), esdb.ReadAllOptions{From: esdb.Position{Commit: wa.CommitPosition, Prepare: wa.CommitPosition}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var got []string
	var last uint64
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p := ev.Event.Position.Commit; p <= last {
			t.Fatalf("$all positions not increasing: %d after %d", p, last)
		}
		last = ev.Event.Position.Commit
		got = append(got, fmt.Sprintf("%s@%d", ev.Event.StreamID[:5], ev.Event.EventNumber))
	}
	if fmt.Sprint(got) != "[all-a@1 all-b@0 all-b@1 all-b@2]" {
		t.Fatalf("$all from a's last position: %v", got)
	}
	back, err := c.ReadAll(ctxT(t), esdb.ReadAllOptions{From: esdb.Position{Commit: wb.CommitPosition, Prepare: wb.CommitPosition}, Direction: esdb.Backwards}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	ev, err := back.Recv()
	if err != nil || ev.Event.StreamID != b || ev.Event.EventNumber != 1 {
		t.Fatalf("backwards from b's last position is exclusive: got %+v %v", ev, err)
	}
}

// TestConcurrentWritersOneStream races 50 writers for every revision of one
// stream: exactly one wins each revision, the others get wrong expected version.
func TestConcurrentWritersOneStream(t *testing.T) {
	c := client(t)
	s := name("race")
	const writers, rounds = 50, 5
	for rev := 0; rev < rounds; rev++ {
		exp := esdb.ExpectedRevision(esdb.Revision(uint64(rev - 1)))
		if rev == 0 {
			exp = esdb.NoStream{}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, losses := 0, 0
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.AppendToStream(ctxT(t), s, esdb.AppendToStreamOptions{ExpectedRevision: exp}, event("Thing", `{}`))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case code(err) == esdb.ErrorCodeWrongExpectedVersion:
					losses++
				default:
					t.Errorf("writer %d: unexpected error %v", w, err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || losses != writers-1 {
			t.Fatalf("revision %d: %d winners and %d losers, want 1 and %d", rev, wins, losses, writers-1)
		}
	}
	evs, err := readAll(t, c, s, esdb.ReadStreamOptions{}, 100)
	if err != nil || len(evs) != rounds {
		t.Fatalf("stream holds %d events (%v), want %d", len(evs), err, rounds)
	}
}

func TestDeleteAndTombstone(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	s := name("del")
	appendOK(t, c, s, esdb.NoStream{}, events(3)...)
	dr, err := c.DeleteStream(ctx, s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(2)})
	if err != nil || dr.Position.Commit == 0 || dr.Position.Prepare == 0 {
		t.Fatalf("delete: %+v %v", dr, err)
	}
	if _, err := readAll(t, c, s, esdb.ReadStreamOptions{}, 10); code(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("read after soft delete: %v, want resource not found", err)
	}
	w := appendOK(t, c, s, esdb.Any{}, event("Again", `{}`))
	if w.NextExpectedVersion != 3 {
		t.Fatalf("append after soft delete got revision %d, want 3", w.NextExpectedVersion)
	}
	if evs, err := readAll(t, c, s, esdb.ReadStreamOptions{}, 10); err != nil || len(evs) != 1 || evs[0].EventType != "Again" {
		t.Fatalf("after recreate the stream shows %d events (%v), want only the new one", len(evs), err)
	}
	tr, err := c.TombstoneStream(ctx, s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}})
	if err != nil || tr.Position.Commit == 0 {
		t.Fatalf("tombstone: %+v %v", tr, err)
	}
	if _, err := readAll(t, c, s, esdb.ReadStreamOptions{}, 10); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Fatalf("read after tombstone: %v, want stream deleted", err)
	}
	if _, err := c.AppendToStream(ctx, s, esdb.AppendToStreamOptions{}, event("X", `{}`)); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Fatalf("append after tombstone: %v, want stream deleted", err)
	}
	if _, err := c.DeleteStream(ctx, name("never"), esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(4)}); err == nil {
		t.Fatal("deleting a missing stream at revision 4 must fail")
	}
}

func TestStreamMetadataRoundTrip(t *testing.T) {
	c := client(t)
	ctx := ctxT(t)
	s := name("meta")
	appendOK(t, c, s, esdb.NoStream{}, events(5)...)
	var m esdb.StreamMetadata
	m.SetMaxCount(2)
	m.AddCustomProperty("owner", "ordo")
	if _, err := c.SetStreamMetadata(ctx, s, esdb.AppendToStreamOptions{}, m); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetStreamMetadata(ctx, s, esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mc := got.MaxCount(); mc == nil || *mc != 2 || got.CustomProperty("owner") != "ordo" {
		t.Fatalf("metadata round trip: maxCount %v, owner %v", got.MaxCount(), got.CustomProperty("owner"))
	}
	evs, err := readAll(t, c, s, esdb.ReadStreamOptions{}, 10)
	if err != nil || len(evs) != 2 || evs[0].EventNumber != 3 {
		t.Fatalf("with $maxCount 2 a read shows %d events (%v), want revisions 3 and 4", len(evs), err)
	}
}

func TestOversizeAppend(t *testing.T) {
	c := esdbtest.Connect(t, startEmbedded(t, t.TempDir(), 0).URL())
	big := event("Big", `"`+strings.Repeat("x", 1<<20)+`"`)
	_, err := c.AppendToStream(ctxT(t), name("big"), esdb.AppendToStreamOptions{}, big)
	if err == nil || !strings.Contains(err.Error(), "maximum append size") {
		t.Fatalf("a 1 MiB event: got %v, want the maximum append size error", err)
	}
	ok := event("Fits", `"`+strings.Repeat("x", 1<<19)+`"`)
	appendOK(t, c, name("fits"), esdb.Any{}, ok)
}

func TestDiscoverConnectionString(t *testing.T) {
	if url := endpoint(t); !strings.HasPrefix(url, "esdb://127.0.0.1") {
		t.Skip("needs the embedded server")
	}
	srv := startEmbedded(t, t.TempDir(), 0)
	c := esdbtest.Connect(t, "esdb+discover://"+srv.Addr().String()+"?tls=false")
	appendOK(t, c, name("gossip"), esdb.Any{}, event("Thing", `{}`))
}
