package esdbserver

import (
	"encoding/binary"
	"strconv"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// Reads and subscriptions send one ReadResp per event, and building that
// nested message (a map of three strings, five levels of pointers) and
// having the generic protobuf marshaller walk it is the bulk of the
// server's work per event read. encodedEvent is the same message written
// directly in the protobuf wire format; the server's codec passes such
// bytes through and marshals every other message as usual.

// encodedEvent is a ReadResp already in wire form.
type encodedEvent []byte

// encodedAppendResp is an AppendResp already in wire form.
type encodedAppendResp []byte

// passThroughCodec is the gRPC "proto" codec, except that it sends an
// encodedEvent or encodedAppendResp as it is and decodes an appendMsg by hand (decode.go).
type passThroughCodec struct{ encoding.CodecV2 }

func newPassThroughCodec() passThroughCodec {
	return passThroughCodec{encoding.GetCodecV2("proto")}
}

func (c passThroughCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch e := v.(type) {
	case encodedEvent:
		return mem.BufferSlice{mem.SliceBuffer(e)}, nil
	case encodedAppendResp:
		return mem.BufferSlice{mem.SliceBuffer(e)}, nil
	}
	return c.CodecV2.Marshal(v)
}

func (c passThroughCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*appendMsg); ok {
		return unmarshalAppend(data, m)
	}
	if _, ok := v.(*discardMsg); ok {
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// Field numbers from the client's protos/streams.proto, persistent.proto
// (whose ReadResp.ReadEvent has the same layout plus a retry count) and
// shared.proto.
const (
	fReadRespEvent          = 1 // ReadResp.event (ReadEvent)
	fReadEventEvent         = 1 // ReadEvent.event (RecordedEvent)
	fReadEventLink          = 2 // ReadEvent.link (RecordedEvent)
	fReadEventCommit        = 3 // ReadEvent.commit_position
	fReadEventRetryCount    = 5 // persistent ReadEvent.retry_count
	fRecordedID             = 1 // RecordedEvent.id (UUID)
	fRecordedStream         = 2 // RecordedEvent.stream_identifier
	fRecordedRevision       = 3
	fRecordedPrepare        = 4
	fRecordedCommit         = 5
	fRecordedMetadata       = 6 // map<string,string>
	fRecordedCustomMetadata = 7
	fRecordedData           = 8
	fUUIDStructured         = 1 // UUID.structured
	fStructuredMost         = 1
	fStructuredLeast        = 2
	fStreamName             = 3 // StreamIdentifier.stream_name
	fMapKey, fMapValue      = 1, 2
)

// encodeEvent writes one event's ReadResp, field for field. "created"
// (100-ns ticks since the Unix epoch) is mandatory: the client exits the
// process without it.
func encodeEvent(r storage.Record) encodedEvent {
	return encodeResolved(&r, nil, -1)
}

// encodeResolved writes the ReadResp of a resolved event: ev is the event
// (nil when a link could not be resolved), link the link that led to it
// (nil for a plain event). The position of the message is the original
// event's: the link's when there is one. A retry count >= 0 is written as
// a persistent subscription's retry_count (the same ReadResp layout).
func encodeResolved(ev, link *storage.Record, retry int32) encodedEvent {
	orig := ev
	if link != nil {
		orig = link
	}
	pos := uint64(orig.Position)
	var evSize, linkSize int
	var evMeta, linkMeta recordedMeta
	readEventSize := protowire.SizeTag(fReadEventCommit) + protowire.SizeVarint(pos)
	if ev != nil {
		evMeta = newRecordedMeta(ev)
		evSize = recordedSize(ev, &evMeta)
		readEventSize += protowire.SizeTag(fReadEventEvent) + protowire.SizeBytes(evSize)
	}
	if link != nil {
		linkMeta = newRecordedMeta(link)
		linkSize = recordedSize(link, &linkMeta)
		readEventSize += protowire.SizeTag(fReadEventLink) + protowire.SizeBytes(linkSize)
	}
	if retry >= 0 {
		readEventSize += protowire.SizeTag(fReadEventRetryCount) + protowire.SizeVarint(uint64(retry))
	}

	out := make([]byte, 0, protowire.SizeTag(fReadRespEvent)+protowire.SizeBytes(readEventSize))
	out = protowire.AppendTag(out, fReadRespEvent, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(readEventSize))
	if ev != nil {
		out = protowire.AppendTag(out, fReadEventEvent, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(evSize))
		out = appendRecorded(out, ev, &evMeta)
	}
	if link != nil {
		out = protowire.AppendTag(out, fReadEventLink, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(linkSize))
		out = appendRecorded(out, link, &linkMeta)
	}
	// The oneof member is set even when zero, so it is always written.
	out = protowire.AppendTag(out, fReadEventCommit, protowire.VarintType)
	out = protowire.AppendVarint(out, pos)
	if retry >= 0 {
		out = protowire.AppendTag(out, fReadEventRetryCount, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(retry))
	}
	return out
}

// recordedMeta is what a RecordedEvent's size and encoding both need.
type recordedMeta struct {
	kv        [3][2]string // type, content-type, created
	entrySize [3]int
	most      uint64
	least     uint64
	idSize    int
	uuidSize  int
	streamLen int
}

func newRecordedMeta(r *storage.Record) recordedMeta {
	ct := "application/octet-stream"
	if r.IsJSON {
		ct = "application/json"
	}
	m := recordedMeta{kv: [3][2]string{{"type", r.Type}, {"content-type", ct},
		{"created", strconv.FormatInt(r.Created.UnixNano()/100, 10)}}}
	m.most, m.least = binary.BigEndian.Uint64(r.ID[:8]), binary.BigEndian.Uint64(r.ID[8:])
	m.uuidSize = protowire.SizeTag(fStructuredMost) + protowire.SizeVarint(m.most) +
		protowire.SizeTag(fStructuredLeast) + protowire.SizeVarint(m.least)
	m.idSize = protowire.SizeTag(fUUIDStructured) + protowire.SizeBytes(m.uuidSize)
	m.streamLen = protowire.SizeTag(fStreamName) + protowire.SizeBytes(len(r.Stream))
	for i, kv := range m.kv {
		m.entrySize[i] = protowire.SizeTag(fMapKey) + protowire.SizeBytes(len(kv[0])) + protowire.SizeTag(fMapValue) + protowire.SizeBytes(len(kv[1]))
	}
	return m
}

// recordedSize is the size of r's RecordedEvent, so a message is written
// into one allocation.
func recordedSize(r *storage.Record, m *recordedMeta) int {
	pos := uint64(r.Position)
	size := protowire.SizeTag(fRecordedID) + protowire.SizeBytes(m.idSize) +
		protowire.SizeTag(fRecordedStream) + protowire.SizeBytes(m.streamLen)
	if r.Revision != 0 {
		size += protowire.SizeTag(fRecordedRevision) + protowire.SizeVarint(uint64(r.Revision))
	}
	if pos != 0 {
		size += protowire.SizeTag(fRecordedPrepare) + protowire.SizeTag(fRecordedCommit) + 2*protowire.SizeVarint(pos)
	}
	for i := range m.kv {
		size += protowire.SizeTag(fRecordedMetadata) + protowire.SizeBytes(m.entrySize[i])
	}
	if len(r.CustomMetadata) > 0 {
		size += protowire.SizeTag(fRecordedCustomMetadata) + protowire.SizeBytes(len(r.CustomMetadata))
	}
	if len(r.Data) > 0 {
		size += protowire.SizeTag(fRecordedData) + protowire.SizeBytes(len(r.Data))
	}
	return size
}

// appendRecorded writes r's RecordedEvent (without its tag and length).
func appendRecorded(out []byte, r *storage.Record, m *recordedMeta) []byte {
	pos := uint64(r.Position)
	out = protowire.AppendTag(out, fRecordedID, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(m.idSize))
	out = protowire.AppendTag(out, fUUIDStructured, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(m.uuidSize))
	out = protowire.AppendTag(out, fStructuredMost, protowire.VarintType)
	out = protowire.AppendVarint(out, m.most)
	out = protowire.AppendTag(out, fStructuredLeast, protowire.VarintType)
	out = protowire.AppendVarint(out, m.least)
	out = protowire.AppendTag(out, fRecordedStream, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(m.streamLen))
	out = protowire.AppendTag(out, fStreamName, protowire.BytesType)
	out = protowire.AppendString(out, r.Stream)
	if r.Revision != 0 {
		out = protowire.AppendTag(out, fRecordedRevision, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(r.Revision))
	}
	if pos != 0 {
		out = protowire.AppendTag(out, fRecordedPrepare, protowire.VarintType)
		out = protowire.AppendVarint(out, pos)
		out = protowire.AppendTag(out, fRecordedCommit, protowire.VarintType)
		out = protowire.AppendVarint(out, pos)
	}
	for i, kv := range m.kv {
		out = protowire.AppendTag(out, fRecordedMetadata, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(m.entrySize[i]))
		out = protowire.AppendTag(out, fMapKey, protowire.BytesType)
		out = protowire.AppendString(out, kv[0])
		out = protowire.AppendTag(out, fMapValue, protowire.BytesType)
		out = protowire.AppendString(out, kv[1])
	}
	if len(r.CustomMetadata) > 0 {
		out = protowire.AppendTag(out, fRecordedCustomMetadata, protowire.BytesType)
		out = protowire.AppendBytes(out, r.CustomMetadata)
	}
	if len(r.Data) > 0 {
		out = protowire.AppendTag(out, fRecordedData, protowire.BytesType)
		out = protowire.AppendBytes(out, r.Data)
	}
	return out
}

// AppendResp field numbers.
const (
	fAppendRespSuccess     = 1
	fSuccessRevision       = 1
	fSuccessNoStream       = 2
	fSuccessPosition       = 3
	fSuccessNoPosition     = 4
	fPositionCommit        = 1
	fPositionPrepare       = 2
	maxAppendSuccessLength = 2 + 2*(1+binary.MaxVarintLen64) + 2 + 2*(1+binary.MaxVarintLen64)
)

// encodeAppendSuccess writes the AppendResp of a successful append: the
// reply to every append, built without the generated message's
// allocations and the generic marshaller.
func encodeAppendSuccess(res storage.AppendResult) encodedAppendResp {
	var b [maxAppendSuccessLength]byte
	succ := b[:0]
	if res.NoStream {
		succ = protowire.AppendTag(succ, fSuccessNoStream, protowire.BytesType)
		succ = protowire.AppendVarint(succ, 0)
	} else {
		// The oneof member is set even when zero, so it is always written.
		succ = protowire.AppendTag(succ, fSuccessRevision, protowire.VarintType)
		succ = protowire.AppendVarint(succ, uint64(res.Revision))
	}
	if res.NoPosition {
		succ = protowire.AppendTag(succ, fSuccessNoPosition, protowire.BytesType)
		succ = protowire.AppendVarint(succ, 0)
	} else {
		p := uint64(res.Position)
		var posBuf [2 * (1 + binary.MaxVarintLen64)]byte
		pos := posBuf[:0]
		if p != 0 {
			pos = protowire.AppendTag(pos, fPositionCommit, protowire.VarintType)
			pos = protowire.AppendVarint(pos, p)
			pos = protowire.AppendTag(pos, fPositionPrepare, protowire.VarintType)
			pos = protowire.AppendVarint(pos, p)
		}
		succ = protowire.AppendTag(succ, fSuccessPosition, protowire.BytesType)
		succ = protowire.AppendBytes(succ, pos)
	}
	out := make([]byte, 0, protowire.SizeTag(fAppendRespSuccess)+protowire.SizeBytes(len(succ)))
	out = protowire.AppendTag(out, fAppendRespSuccess, protowire.BytesType)
	out = protowire.AppendBytes(out, succ)
	return out
}
