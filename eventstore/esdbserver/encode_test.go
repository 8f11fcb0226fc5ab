package esdbserver

import (
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/protobuf/proto"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// TestEncodeEventMatchesProto: the hand-written ReadResp decodes to exactly
// the message eventResp builds, for the edge cases of every field.
func TestEncodeEventMatchesProto(t *testing.T) {
	created := time.Date(2026, 11, 24, 9, 30, 0, 123456700, time.UTC)
	for _, r := range []storage.Record{
		{Position: 1, Stream: "order-1", Revision: 0, ID: [16]byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0x80}, Type: "OrderPlaced", IsJSON: true,
			Created: created, Data: []byte(`{"a":1}`), CustomMetadata: []byte(`{"m":2}`)},
		{Position: 1 << 40, Stream: "sku-x", Revision: 1<<32 + 7, Type: "$metadata", Created: created, Data: make([]byte, 300)},
		{Position: 0, Stream: "s", Type: "E", Created: time.Unix(0, 0)},
		{Position: 9, Stream: "ü-stream", Revision: 3, Type: "Ünïcode", IsJSON: true, Created: created},
	} {
		want := eventResp(r)
		var got streams.ReadResp
		if err := proto.Unmarshal(encodeEvent(r), &got); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("hand-encoded %v\nwant        %v", &got, want)
		}
	}
}

// TestEncodeResolvedMatchesProto: a resolved link (event and link), an
// unresolved one (link alone) and a persistent subscription's event with
// its retry count decode to the generated messages.
func TestEncodeResolvedMatchesProto(t *testing.T) {
	created := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	ev := storage.Record{Position: 3, Stream: "target", Revision: 1, ID: [16]byte{1}, Type: "Thing", IsJSON: true, Created: created, Data: []byte(`{}`)}
	link := storage.Record{Position: 7, Stream: "links", Revision: 0, ID: [16]byte{2}, Type: "$>", Created: created, Data: []byte("1@target")}
	for _, tc := range []struct {
		name      string
		ev, link  *storage.Record
		retry     int32
		wantEvent *storage.Record
	}{
		{"resolved", &ev, &link, -1, &ev},
		{"unresolved", nil, &link, -1, nil},
		{"persistent, retried", &ev, nil, 3, &ev},
		{"persistent, resolved, first delivery", &ev, &link, 0, &ev},
	} {
		wire := encodeResolved(tc.ev, tc.link, tc.retry)
		orig := tc.ev
		if tc.link != nil {
			orig = tc.link
		}
		if tc.retry < 0 {
			want := &streams.ReadResp_ReadEvent{Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: uint64(orig.Position)}}
			if tc.ev != nil {
				want.Event = eventResp(*tc.ev).GetEvent().GetEvent()
			}
			if tc.link != nil {
				want.Link = eventResp(*tc.link).GetEvent().GetEvent()
			}
			var got streams.ReadResp
			if err := proto.Unmarshal(wire, &got); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !proto.Equal(got.GetEvent(), want) {
				t.Fatalf("%s: hand-encoded %v\nwant %v", tc.name, got.GetEvent(), want)
			}
			continue
		}
		var got persistent.ReadResp
		if err := proto.Unmarshal(wire, &got); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := &persistent.ReadResp_ReadEvent{
			Position: &persistent.ReadResp_ReadEvent_CommitPosition{CommitPosition: uint64(orig.Position)},
			Count:    &persistent.ReadResp_ReadEvent_RetryCount{RetryCount: tc.retry},
		}
		if tc.ev != nil {
			want.Event = persistentRecorded(t, *tc.ev)
		}
		if tc.link != nil {
			want.Link = persistentRecorded(t, *tc.link)
		}
		if !proto.Equal(got.GetEvent(), want) {
			t.Fatalf("%s: hand-encoded %v\nwant %v", tc.name, got.GetEvent(), want)
		}
	}
}

// persistentRecorded is r as a persistent subscription's RecordedEvent,
// which has the streams one's layout.
func persistentRecorded(t *testing.T, r storage.Record) *persistent.ReadResp_ReadEvent_RecordedEvent {
	b, err := proto.Marshal(eventResp(r).GetEvent().GetEvent())
	if err != nil {
		t.Fatal(err)
	}
	var out persistent.ReadResp_ReadEvent_RecordedEvent
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// FuzzEncodeEvent holds encodeEvent to the generated message for any
// record (stream names and types must be valid UTF-8, as stored ones are).
func FuzzEncodeEvent(f *testing.F) {
	f.Add(uint64(1), "order-1", uint64(0), []byte("0123456789abcdef"), "OrderPlaced", true, int64(1764581400), []byte(`{"a":1}`), []byte(`{}`))
	f.Add(uint64(0), "", uint64(1<<63-1), []byte{}, "", false, int64(-1), []byte(nil), make([]byte, 200))
	f.Fuzz(func(t *testing.T, pos uint64, stream string, rev uint64, id []byte, typ string, isJSON bool, created int64, data, meta []byte) {
		if !utf8.ValidString(stream) || !utf8.ValidString(typ) {
			t.Skip()
		}
		r := storage.Record{Position: storage.Position(pos), Stream: stream, Revision: storage.Revision(rev), Type: typ,
			IsJSON: isJSON, Created: time.Unix(0, created), Data: data, CustomMetadata: meta}
		copy(r.ID[:], id)
		var got streams.ReadResp
		if err := proto.Unmarshal(encodeEvent(r), &got); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if want := eventResp(r); !proto.Equal(&got, want) {
			t.Fatalf("hand-encoded %v\nwant        %v", &got, want)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	r := storage.Record{Position: 123456, Stream: "order-0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a", Revision: 4, Type: "PaymentSucceeded", IsJSON: true,
		Created: time.Now(), Data: make([]byte, 120), CustomMetadata: make([]byte, 180)}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = encodeEvent(r)
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			_, _ = proto.Marshal(eventResp(r))
		}
	})
}

// eventResp is the reference for encodeEvent: one event as the generated
// message, as the server built it before events were sent pre-encoded.
func eventResp(r storage.Record) *streams.ReadResp {
	ct := "application/octet-stream"
	if r.IsJSON {
		ct = "application/json"
	}
	p := uint64(r.Position)
	ev := &streams.ReadResp_ReadEvent_RecordedEvent{
		Id:               idToProto(r.ID),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.Stream)},
		StreamRevision:   uint64(r.Revision),
		PreparePosition:  p,
		CommitPosition:   p,
		Metadata: map[string]string{
			"type":         r.Type,
			"content-type": ct,
			"created":      strconv.FormatInt(r.Created.UnixNano()/100, 10),
		},
		CustomMetadata: r.CustomMetadata,
		Data:           r.Data,
	}
	return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: &streams.ReadResp_ReadEvent{
		Event: ev, Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: p}}}}
}

// TestEncodeAppendSuccessMatchesProto: the hand-written AppendResp decodes
// to exactly the generated message the handler built before, for every
// form of result.
func TestEncodeAppendSuccessMatchesProto(t *testing.T) {
	for _, res := range []storage.AppendResult{
		{Revision: 0, Position: 1},
		{Revision: 41, Position: 1<<63 - 1},
		{Revision: 1<<63 - 1, Position: 300},
		{Revision: 7, NoPosition: true},
		{Revision: 0, NoPosition: true},
		{NoStream: true, NoPosition: true},
		{Revision: 3, Position: 0},
	} {
		var got streams.AppendResp
		if err := proto.Unmarshal(encodeAppendSuccess(res), &got); err != nil {
			t.Fatalf("%+v: %v", res, err)
		}
		if want := appendSuccessResp(res); !proto.Equal(&got, want) {
			t.Fatalf("%+v: hand-encoded %v\nwant %v", res, &got, want)
		}
	}
}

// appendSuccessResp is the reference for encodeAppendSuccess: the
// generated message the Append handler built before.
func appendSuccessResp(res storage.AppendResult) *streams.AppendResp {
	success := &streams.AppendResp_Success{}
	if res.NoStream {
		success.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		success.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(res.Revision)}
	}
	if res.NoPosition {
		success.PositionOption = &streams.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
	} else {
		p := uint64(res.Position)
		success.PositionOption = &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{CommitPosition: p, PreparePosition: p}}
	}
	return &streams.AppendResp{Result: &streams.AppendResp_Success_{Success: success}}
}
