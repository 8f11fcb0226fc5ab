package esdbserver

import (
	"bytes"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// clientAppendReqs are AppendReqs as the official clients build them (and
// the variants of every field the protocol allows).
func clientAppendReqs() []*streams.AppendReq {
	opts := func(o *streams.AppendReq_Options) *streams.AppendReq {
		return &streams.AppendReq{Content: &streams.AppendReq_Options_{Options: o}}
	}
	sid := &shared.StreamIdentifier{StreamName: []byte("order-0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a")}
	pm := func(p *streams.AppendReq_ProposedMessage) *streams.AppendReq {
		return &streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: p}}
	}
	structured := &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits: -0x7edcba9876543211, LeastSignificantBits: 0x0123456789abcdef}}}
	return []*streams.AppendReq{
		{},
		opts(&streams.AppendReq_Options{}),
		opts(&streams.AppendReq_Options{StreamIdentifier: sid}),
		opts(&streams.AppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{}}),
		opts(&streams.AppendReq_Options{StreamIdentifier: sid, ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}}}),
		opts(&streams.AppendReq_Options{StreamIdentifier: sid, ExpectedStreamRevision: &streams.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}}),
		opts(&streams.AppendReq_Options{StreamIdentifier: sid, ExpectedStreamRevision: &streams.AppendReq_Options_StreamExists{StreamExists: &shared.Empty{}}}),
		opts(&streams.AppendReq_Options{StreamIdentifier: sid, ExpectedStreamRevision: &streams.AppendReq_Options_Revision{Revision: 0}}),
		opts(&streams.AppendReq_Options{StreamIdentifier: sid, ExpectedStreamRevision: &streams.AppendReq_Options_Revision{Revision: 1<<64 - 1}}),
		pm(&streams.AppendReq_ProposedMessage{}),
		pm(&streams.AppendReq_ProposedMessage{Id: structured, Metadata: map[string]string{"type": "OrderPlaced", "content-type": "application/json"},
			Data: []byte(`{"a":1}`), CustomMetadata: []byte(`{"correlation":"x"}`)}),
		pm(&streams.AppendReq_ProposedMessage{Id: &shared.UUID{Value: &shared.UUID_String_{String_: "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a"}},
			Metadata: map[string]string{"type": "", "content-type": "application/octet-stream", "extra": "ü"}, Data: make([]byte, 3000)}),
		pm(&streams.AppendReq_ProposedMessage{Id: &shared.UUID{Value: &shared.UUID_String_{String_: ""}}, Metadata: map[string]string{"type": "T"}}),
		pm(&streams.AppendReq_ProposedMessage{Id: &shared.UUID{}, Metadata: map[string]string{"content-type": "text/plain"}}),
		pm(&streams.AppendReq_ProposedMessage{Id: &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{}}}}),
		pm(&streams.AppendReq_ProposedMessage{Id: &shared.UUID{Value: &shared.UUID_String_{String_: "not a uuid"}}, Data: []byte{}}),
	}
}

// oddAppendReqs are valid or invalid encodings no client sends, which the
// hand decoder must hand to the generated path (or decode identically).
func oddAppendReqs() [][]byte {
	tagged := func(num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	sid := tagged(fOptionsStream, tagged(fStreamName, []byte("s")))
	entry := func(k, v string) []byte {
		return tagged(fProposedMetadata, cat(tagged(fMapKey, []byte(k)), tagged(fMapValue, []byte(v))))
	}
	return [][]byte{
		// Options twice: the second merges into the first.
		cat(tagged(fAppendOptions, sid), tagged(fAppendOptions, varint(fOptionsRevision, 4))),
		// Options, then a proposed message: the last oneof member wins.
		cat(tagged(fAppendOptions, sid), tagged(fAppendProposed, entry("type", "T"))),
		// Two expected revisions: the last wins.
		tagged(fAppendOptions, cat(sid, varint(fOptionsRevision, 4), tagged(fOptionsNoStream, nil))),
		// Stream name twice, reserved stream identifier fields, unknown fields.
		tagged(fAppendOptions, cat(sid, tagged(fOptionsStream, tagged(fStreamName, []byte("t"))))),
		tagged(fAppendOptions, tagged(fOptionsStream, cat(varint(1, 7), tagged(fStreamName, []byte("s"))))),
		tagged(fAppendOptions, cat(sid, varint(99, 1))),
		cat(tagged(fAppendOptions, sid), varint(7, 1)),
		// A non-empty Empty.
		tagged(fAppendOptions, cat(sid, tagged(fOptionsAny, varint(1, 1)))),
		// Wrong wire types.
		varint(fAppendOptions, 1),
		tagged(fAppendOptions, tagged(fOptionsRevision, []byte{1})),
		// Map entries: repeated key, key or value missing, fields twice, bad UTF-8.
		tagged(fAppendProposed, cat(entry("type", "A"), entry("type", "B"), entry("content-type", "application/json"))),
		tagged(fAppendProposed, tagged(fProposedMetadata, tagged(fMapKey, []byte("type")))),
		tagged(fAppendProposed, tagged(fProposedMetadata, tagged(fMapValue, []byte("v")))),
		tagged(fAppendProposed, tagged(fProposedMetadata, cat(tagged(fMapValue, []byte("v")), tagged(fMapKey, []byte("type"))))),
		tagged(fAppendProposed, tagged(fProposedMetadata, cat(tagged(fMapKey, []byte("type")), tagged(fMapKey, []byte("x")), tagged(fMapValue, []byte("v"))))),
		tagged(fAppendProposed, entry("type", "\xff")),
		tagged(fAppendProposed, entry("\xc3", "v")),
		// Data and IDs twice, both ID forms, bad UTF-8 in the string form.
		tagged(fAppendProposed, cat(tagged(fProposedData, []byte("a")), tagged(fProposedData, []byte("b")))),
		tagged(fAppendProposed, cat(tagged(fProposedID, tagged(fUUIDString, []byte("x"))), tagged(fProposedID, tagged(fUUIDStructured, varint(1, 5))))),
		tagged(fAppendProposed, tagged(fProposedID, cat(tagged(fUUIDStructured, varint(1, 5)), tagged(fUUIDString, []byte("x"))))),
		tagged(fAppendProposed, tagged(fProposedID, tagged(fUUIDStructured, cat(varint(1, 5), varint(1, 6))))),
		tagged(fAppendProposed, tagged(fProposedID, tagged(fUUIDString, []byte("\xff")))),
		// Truncated and garbage input.
		tagged(fAppendOptions, sid)[:4],
		{0xff, 0xff, 0xff},
		{0x0a, 0x05, 0x0a},
	}
}

// checkDecode compares the hand decoder with the generated message on b.
// It reports whether the hand decoder took its fast path.
func checkDecode(tb testing.TB, b []byte) bool {
	tb.Helper()
	var ref streams.AppendReq
	refErr := proto.Unmarshal(b, &ref)
	var got appendMsg
	err := got.decode(append([]byte(nil), b...))
	if (err != nil) != (refErr != nil) {
		tb.Fatalf("% x: hand decoder error %v, generated decoder error %v", b, err, refErr)
	}
	if err != nil {
		return false
	}
	if want := appendMsgFromProto(&ref); !sameAppendMsg(got, want) {
		tb.Fatalf("% x:\nhand decoder %+v\ngenerated    %+v", b, got, want)
	}
	var fast appendMsg
	return fast.decodeFast(b)
}

func sameAppendMsg(a, b appendMsg) bool {
	return a.content == b.content && a.stream == b.stream && a.expected == b.expected &&
		a.idForm == b.idForm && a.idBits == b.idBits && a.idString == b.idString &&
		a.typ == b.typ && a.ct == b.ct && a.hasTyp == b.hasTyp && a.hasCT == b.hasCT &&
		bytes.Equal(a.data, b.data) && bytes.Equal(a.custMeta, b.custMeta)
}

// TestDecodeAppendMatchesProto: the hand decoder reads every AppendReq the
// way the generated message does, and takes its fast path for what clients
// send.
func TestDecodeAppendMatchesProto(t *testing.T) {
	for _, req := range clientAppendReqs() {
		for _, deterministic := range []bool{false, true} {
			b, err := proto.MarshalOptions{Deterministic: deterministic}.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if !checkDecode(t, b) {
				t.Errorf("%v: the hand decoder fell back to the generated message for a client's message", req)
			}
		}
	}
	for _, b := range oddAppendReqs() {
		checkDecode(t, b)
	}
}

func FuzzDecodeAppend(f *testing.F) {
	for _, req := range clientAppendReqs() {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range oddAppendReqs() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

func BenchmarkDecodeAppend(b *testing.B) {
	req := clientAppendReqs()[10]
	wire, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m appendMsg
			_ = m.decode(append([]byte(nil), wire...))
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m streams.AppendReq
			_ = proto.Unmarshal(wire, &m)
		}
	})
}
