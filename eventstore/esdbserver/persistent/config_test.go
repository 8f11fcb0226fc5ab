package persistent

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// TestEntryRoundTrip: a definition survives its saved JSON form (what a
// restart loads), for every kind of source and start.
func TestEntryRoundTrip(t *testing.T) {
	settings := Settings{ResolveLinkTos: true, ExtraStatistics: true, MessageTimeout: 1500 * time.Millisecond, MaxRetryCount: 3,
		LiveBufferSize: 100, ReadBatchSize: 10, HistoryBufferSize: 50, CheckpointAfter: 2 * time.Second,
		MinCheckpointCount: 5, MaxCheckpointCount: 50, MaxSubscriberCount: 2, ConsumerStrategy: Pinned}
	for _, spec := range []Spec{
		{Source: Source{Stream: "orders"}, Group: "g", Start: StartFrom{}, Settings: settings},
		{Source: Source{Stream: "orders"}, Group: "g", Start: StartFrom{At: 42}, Settings: settings},
		{Source: Source{Stream: "orders"}, Group: "g", Start: StartFrom{End: true}, Settings: settings},
		{Source: Source{Stream: AllStream}, Group: "g", Start: StartFrom{At: 120, Prepare: 120}, Settings: settings},
		{Source: Source{Stream: AllStream, Filter: storage.Filter{StreamPrefixes: []string{"order-", "sku-"}}}, Group: "g", Start: StartFrom{End: true}, Settings: settings},
		{Source: Source{Stream: AllStream, Filter: storage.Filter{TypeRegex: "^Order"}}, Group: "g", Settings: settings},
	} {
		b, err := json.Marshal(newEntry(spec))
		if err != nil {
			t.Fatal(err)
		}
		var e configEntry
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		got, err := e.spec()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(got, spec) {
			t.Errorf("round trip of %s:\ngot  %+v\nwant %+v", b, got, spec)
		}
	}
}

func TestPositionStrings(t *testing.T) {
	for _, tc := range []struct {
		all  bool
		pos  uint64
		text string
	}{{false, 0, "0"}, {false, 17, "17"}, {true, 0, "C:0/P:0"}, {true, 1234, "C:1234/P:1234"}} {
		if got := positionString(tc.all, tc.pos); got != tc.text {
			t.Errorf("positionString(%v, %d) = %q, want %q", tc.all, tc.pos, got, tc.text)
		}
		if got, err := parsePosition(tc.all, tc.text); err != nil || got != tc.pos {
			t.Errorf("parsePosition(%v, %q) = %d, %v; want %d", tc.all, tc.text, got, err, tc.pos)
		}
	}
	for _, bad := range []string{"", "C:1", "C:x/P:1", "1/2"} {
		if _, err := parsePosition(true, bad); err == nil {
			t.Errorf("parsePosition(true, %q) accepted it", bad)
		}
	}
}

// TestPinnedStrategy: events of one stream stay with one consumer, a new
// consumer takes over part of the streams, and a leaving consumer's
// streams go to the others.
func TestPinnedStrategy(t *testing.T) {
	s := newPinned(false)
	a, b := &Consumer{slots: 100, inflight: map[[16]byte]*message{}}, &Consumer{slots: 100, inflight: map[[16]byte]*message{}}
	msg := func(stream string) *message { return &message{event: &storage.Record{Stream: stream}} }
	s.added(a)
	streams := []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}
	for _, st := range streams {
		if c, res := s.pick(msg(st)); res != pushSent || c != a {
			t.Fatalf("one consumer: %s went to %p (%d)", st, c, res)
		}
	}
	s.added(b)
	owner := map[string]*Consumer{}
	for _, st := range streams {
		c, res := s.pick(msg(st))
		if res != pushSent {
			t.Fatalf("%s: result %d", st, res)
		}
		owner[st] = c
		if again, _ := s.pick(msg(st)); again != c {
			t.Fatalf("%s moved between two picks", st)
		}
	}
	counts := map[*Consumer]int{}
	for _, c := range owner {
		counts[c]++
	}
	if counts[a] == 0 || counts[b] == 0 {
		t.Fatalf("after the second consumer joined: %d and %d streams, want both to have some", counts[a], counts[b])
	}
	s.removed(a)
	for _, st := range streams {
		if c, _ := s.pick(msg(st)); c != b {
			t.Fatalf("after the first left, %s went to %p, want the remaining consumer", st, c)
		}
	}
	// A full owner makes its streams wait; others still flow.
	for i := 0; i < 100; i++ {
		b.inflight[[16]byte{byte(i)}] = nil
	}
	if _, res := s.pick(msg("s1")); res != pushNoRoom {
		t.Fatalf("with every consumer full: result %d, want no room", res)
	}
}
