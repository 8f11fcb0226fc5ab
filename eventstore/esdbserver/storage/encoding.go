package storage

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
	"unsafe"
)

// Key layout in the storage engine:
//
//	'L' pos(8, big-endian)                 -> encoded Record (the $all log)
//	'S' stream 0x00 rev(8, big-endian)     -> pos(8) (the stream index)
//
// Stream names may not contain 0x00 (the gRPC layer refuses them), so the
// separator keeps one stream's index keys contiguous and ordered by revision.
const (
	prefixLog    = 'L'
	prefixStream = 'S'
)

func logKey(p Position) []byte { return appendLogKey(make([]byte, 0, 9), p) }

func appendLogKey(dst []byte, p Position) []byte {
	return binary.BigEndian.AppendUint64(append(dst, prefixLog), uint64(p))
}

func streamKey(stream string, rev Revision) []byte {
	return appendStreamKey(make([]byte, 0, len(stream)+10), stream, rev)
}

func appendStreamKey(dst []byte, stream string, rev Revision) []byte {
	dst = append(dst, prefixStream)
	dst = append(dst, stream...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, uint64(rev))
}

// streamBounds are the iterator bounds of one stream's index.
func streamBounds(stream string) (lower, upper []byte) {
	lower = append(append([]byte{prefixStream}, stream...), 0)
	upper = append(append([]byte{prefixStream}, stream...), 1)
	return lower, upper
}

func revFromStreamKey(k []byte) Revision {
	return Revision(binary.BigEndian.Uint64(k[len(k)-8:]))
}

// appendRecord appends a record's serialised form (without its position,
// which is the key) to b. Layout: version byte, the revision, the event ID,
// flags and created ticks, then uvarint-length-prefixed stream, type, data
// and custom metadata.
func appendRecord(b []byte, r *Record) []byte {
	b = slices.Grow(b, 1+8+16+1+8+4*binary.MaxVarintLen64+len(r.Stream)+len(r.Type)+len(r.Data)+len(r.CustomMetadata))
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Revision))
	b = append(b, r.ID[:]...)
	var flags byte
	if r.IsJSON {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Created.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(r.Stream)))
	b = append(b, r.Stream...)
	b = binary.AppendUvarint(b, uint64(len(r.Type)))
	b = append(b, r.Type...)
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	b = append(b, r.Data...)
	b = binary.AppendUvarint(b, uint64(len(r.CustomMetadata)))
	return append(b, r.CustomMetadata...)
}

var errCorruptRecord = errors.New("corrupt record")

// decodeRecord parses what appendRecord wrote. The byte slices of the result
// are copies, so the caller may keep them after the engine reuses its buffer.
func decodeRecord(p Position, b []byte) (Record, error) {
	if len(b) < 1+8+16+1+8 || b[0] != 1 {
		return Record{}, errCorruptRecord
	}
	r := Record{Position: p}
	r.Revision = Revision(binary.BigEndian.Uint64(b[1:9]))
	copy(r.ID[:], b[9:25])
	r.IsJSON = b[25]&1 != 0
	r.Created = time.Unix(0, int64(binary.BigEndian.Uint64(b[26:34]))).UTC()
	rest := b[34:]
	var fields [4][]byte
	for i := range fields {
		l, n := binary.Uvarint(rest)
		if n <= 0 || uint64(len(rest)-n) < l {
			return Record{}, errCorruptRecord
		}
		fields[i] = rest[n : n+int(l)]
		rest = rest[n+int(l):]
	}
	// Two allocations hold the variable fields: the names, and the data with
	// its metadata. The names are strings over their own bytes, which
	// nothing else references, so they are never modified (a string
	// conversion would copy them once more); kept apart from the data, a
	// stream name held in a map does not keep an event's body alive.
	names := make([]byte, 0, len(fields[0])+len(fields[1]))
	names = append(append(names, fields[0]...), fields[1]...)
	if len(names) > 0 {
		r.Stream = unsafe.String(&names[0], len(fields[0]))
		r.Type = unsafe.String(unsafe.SliceData(names[len(fields[0]):]), len(fields[1]))
	}
	if n := len(fields[2]) + len(fields[3]); n > 0 {
		body := make([]byte, 0, n)
		body = append(append(body, fields[2]...), fields[3]...)
		if len(fields[2]) > 0 {
			r.Data = body[:len(fields[2]):len(fields[2])]
		}
		if len(fields[3]) > 0 {
			r.CustomMetadata = body[len(fields[2]):n:n]
		}
	}
	return r, nil
}
