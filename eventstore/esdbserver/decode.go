package esdbserver

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// An append is a client-streaming call of two or more small AppendReq
// messages, and the generic protobuf unmarshaller (reflection over the
// generated types, a map per event, five allocations deep) is a sizeable
// part of the server's CPU per append. appendMsg is the part of one
// AppendReq the Append handler uses, read straight from the wire format by
// the server's codec. Anything the hand decoder does not expect (repeated
// or unknown fields, wrong wire types, invalid UTF-8, malformed input) goes
// through the generated message instead, so both paths always agree; a test
// and a fuzz target hold them to that.

type appendContent uint8

const (
	contentNone appendContent = iota
	contentOptions
	contentProposed
)

type idForm uint8

const (
	idMissing    idForm = iota // no ID, or an empty string ID: the server picks one
	idStructured               // two int64 halves
	idString                   // the textual form, parsed by the handler
)

// appendMsg is one decoded AppendReq.
type appendMsg struct {
	content appendContent

	// Options: the stream and the expected revision.
	stream   string
	expected storage.Expected

	// ProposedMessage.
	idForm         idForm
	idBits         [16]byte // idStructured: most then least significant, big-endian
	idString       string   // idString
	typ, ct        string   // metadata "type" and "content-type"
	hasTyp, hasCT  bool
	data, custMeta []byte
}

// AppendReq, Options, ProposedMessage, UUID and StreamIdentifier field
// numbers (client protos/streams.proto and shared.proto).
const (
	fAppendOptions  = 1
	fAppendProposed = 2

	fOptionsStream       = 1
	fOptionsRevision     = 2
	fOptionsNoStream     = 3
	fOptionsAny          = 4
	fOptionsStreamExists = 5

	fProposedID       = 1
	fProposedMetadata = 2
	fProposedCustMeta = 3
	fProposedData     = 4

	fUUIDString = 2
)

// decodeAppendReq fills m from one AppendReq in wire form. b must not be
// reused by the caller: m's byte slices point into it.
func (m *appendMsg) decode(b []byte) error {
	*m = appendMsg{}
	if m.decodeFast(b) {
		return nil
	}
	*m = appendMsg{}
	var req streams.AppendReq
	if err := proto.Unmarshal(b, &req); err != nil {
		return err
	}
	*m = appendMsgFromProto(&req)
	return nil
}

// decodeFast handles the messages the official clients send: exactly one
// content field, each inner field at most once. It reports false for
// anything else, leaving m partly filled.
func (m *appendMsg) decodeFast(b []byte) bool {
	num, body, rest, ok := bytesField(b)
	if !ok {
		return len(b) == 0 // an empty message has no content
	}
	if len(rest) != 0 {
		return false
	}
	switch num {
	case fAppendOptions:
		m.content = contentOptions
		return m.decodeOptions(body)
	case fAppendProposed:
		m.content = contentProposed
		return m.decodeProposed(body)
	}
	return false
}

func (m *appendMsg) decodeOptions(b []byte) bool {
	var seenStream, seenExp bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fOptionsStream && typ == protowire.BytesType && !seenStream:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return false
			}
			name, ok := streamName(v)
			if !ok {
				return false
			}
			m.stream, seenStream, b = name, true, b[k:]
		case num == fOptionsRevision && typ == protowire.VarintType && !seenExp:
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return false
			}
			m.expected = storage.Expected{Kind: storage.ExpectRevision, Revision: storage.Revision(v)}
			seenExp, b = true, b[k:]
		case (num == fOptionsNoStream || num == fOptionsAny || num == fOptionsStreamExists) && typ == protowire.BytesType && !seenExp:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 || len(v) != 0 {
				return false
			}
			switch num {
			case fOptionsNoStream:
				m.expected = storage.Expected{Kind: storage.ExpectNoStream}
			case fOptionsStreamExists:
				m.expected = storage.Expected{Kind: storage.ExpectStreamExists}
			default:
				m.expected = storage.Expected{Kind: storage.ExpectAny}
			}
			seenExp, b = true, b[k:]
		default:
			return false
		}
	}
	return true
}

// streamName reads a StreamIdentifier holding at most its stream_name.
func streamName(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", true
	}
	num, v, rest, ok := bytesField(b)
	if !ok || num != fStreamName || len(rest) != 0 {
		return "", false
	}
	return string(v), true
}

func (m *appendMsg) decodeProposed(b []byte) bool {
	var seenID, seenCust, seenData bool
	for len(b) > 0 {
		num, v, rest, ok := bytesField(b)
		if !ok {
			return false
		}
		b = rest
		switch {
		case num == fProposedID && !seenID:
			if !m.decodeUUID(v) {
				return false
			}
			seenID = true
		case num == fProposedMetadata:
			key, val, ok := mapEntry(v)
			if !ok {
				return false
			}
			// Later entries for the same key replace earlier ones, as in a map.
			switch string(key) {
			case "type":
				m.typ, m.hasTyp = string(val), true
			case "content-type":
				m.ct, m.hasCT = contentType(val), true
			}
		case num == fProposedCustMeta && !seenCust:
			m.custMeta, seenCust = v, true
		case num == fProposedData && !seenData:
			m.data, seenData = v, true
		default:
			return false
		}
	}
	return true
}

// decodeUUID reads a UUID holding exactly one of its two forms (or none).
func (m *appendMsg) decodeUUID(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	num, v, rest, ok := bytesField(b)
	if !ok || len(rest) != 0 {
		return false
	}
	switch num {
	case fUUIDStructured:
		var most, least uint64
		var seenMost, seenLeast bool
		for len(v) > 0 {
			num, x, rest, ok := varintField(v)
			if !ok {
				return false
			}
			v = rest
			switch {
			case num == fStructuredMost && !seenMost:
				most, seenMost = x, true
			case num == fStructuredLeast && !seenLeast:
				least, seenLeast = x, true
			default:
				return false
			}
		}
		m.idForm = idStructured
		binary.BigEndian.PutUint64(m.idBits[:8], most)
		binary.BigEndian.PutUint64(m.idBits[8:], least)
	case fUUIDString:
		if !utf8.Valid(v) {
			return false
		}
		if len(v) > 0 {
			m.idForm, m.idString = idString, string(v)
		}
	default:
		return false
	}
	return true
}

// bytesField reads the length-delimited field b starts with: its number,
// its value and the rest of b. ok is false for anything else.
func bytesField(b []byte) (num protowire.Number, v, rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType {
		return 0, nil, nil, false
	}
	v, k := protowire.ConsumeBytes(b[n:])
	if k < 0 {
		return 0, nil, nil, false
	}
	return num, v, b[n+k:], true
}

// varintField reads the varint field b starts with: its number, its value
// and the rest of b. ok is false for anything else.
func varintField(b []byte) (num protowire.Number, x uint64, rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.VarintType {
		return 0, 0, nil, false
	}
	x, k := protowire.ConsumeVarint(b[n:])
	if k < 0 {
		return 0, 0, nil, false
	}
	return num, x, b[n+k:], true
}

// mapEntry reads a map<string,string> entry holding exactly one key and one
// value, in either order, both valid UTF-8 (proto3 strings must be).
func mapEntry(b []byte) (key, val []byte, ok bool) {
	var seenKey, seenVal bool
	for len(b) > 0 {
		num, v, rest, ok := bytesField(b)
		if !ok || !utf8.Valid(v) {
			return nil, nil, false
		}
		b = rest
		switch {
		case num == fMapKey && !seenKey:
			key, seenKey = v, true
		case num == fMapValue && !seenVal:
			val, seenVal = v, true
		default:
			return nil, nil, false
		}
	}
	return key, val, seenKey && seenVal
}

// contentType returns the content type as a string, without allocating
// for the two the clients send.
func contentType(b []byte) string {
	switch string(b) {
	case "application/json":
		return "application/json"
	case "application/octet-stream":
		return "application/octet-stream"
	}
	return string(b)
}

// appendMsgFromProto is the reference for the hand decoder: what the
// handler needs from a generated AppendReq.
func appendMsgFromProto(req *streams.AppendReq) appendMsg {
	var m appendMsg
	switch c := req.GetContent().(type) {
	case *streams.AppendReq_Options_:
		m.content = contentOptions
		m.stream = string(c.Options.GetStreamIdentifier().GetStreamName())
		m.expected = appendExpected(c.Options)
	case *streams.AppendReq_ProposedMessage_:
		m.content = contentProposed
		pm := c.ProposedMessage
		m.typ, m.hasTyp = pm.GetMetadata()["type"]
		m.ct, m.hasCT = pm.GetMetadata()["content-type"]
		m.data, m.custMeta = pm.GetData(), pm.GetCustomMetadata()
		switch u := pm.GetId(); {
		case u.GetStructured() != nil:
			m.idForm = idStructured
			binary.BigEndian.PutUint64(m.idBits[:8], uint64(u.GetStructured().GetMostSignificantBits()))
			binary.BigEndian.PutUint64(m.idBits[8:], uint64(u.GetStructured().GetLeastSignificantBits()))
		case u.GetString_() != "":
			m.idForm, m.idString = idString, u.GetString_()
		}
	}
	return m
}

// unmarshalAppend is the codec's path for appendMsg.
func unmarshalAppend(data mem.BufferSlice, m *appendMsg) error {
	// A fresh copy: the events' data point into it after the call returns,
	// while gRPC recycles its own buffers.
	return m.decode(data.Materialize())
}
