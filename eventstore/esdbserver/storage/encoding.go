package storage

import (
	"encoding/binary"
	"errors"
	"time"
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

func logKey(p Position) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], uint64(p))
	return k
}

func streamKey(stream string, rev Revision) []byte {
	k := make([]byte, 0, len(stream)+10)
	k = append(k, prefixStream)
	k = append(k, stream...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(rev))
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

// encodeRecord serialises a record (without its position, which is the key).
// Layout: version byte, then uvarint-length-prefixed stream, type, data and
// custom metadata, the revision, the event ID, flags and created ticks.
func encodeRecord(r *Record) []byte {
	n := 1 + 8 + 16 + 1 + 8 + 4*binary.MaxVarintLen64 + len(r.Stream) + len(r.Type) + len(r.Data) + len(r.CustomMetadata)
	b := make([]byte, 0, n)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Revision))
	b = append(b, r.ID[:]...)
	var flags byte
	if r.IsJSON {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Created.UnixNano()))
	for _, f := range [][]byte{[]byte(r.Stream), []byte(r.Type), r.Data, r.CustomMetadata} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

var errCorruptRecord = errors.New("corrupt record")

// decodeRecord parses what encodeRecord wrote. The byte slices of the result
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
	// One allocation holds all variable fields.
	buf := make([]byte, 0, len(fields[0])+len(fields[1])+len(fields[2])+len(fields[3]))
	buf = append(buf, fields[0]...)
	buf = append(buf, fields[1]...)
	buf = append(buf, fields[2]...)
	buf = append(buf, fields[3]...)
	o := 0
	r.Stream = string(buf[o : o+len(fields[0])])
	o += len(fields[0])
	r.Type = string(buf[o : o+len(fields[1])])
	o += len(fields[1])
	if len(fields[2]) > 0 {
		r.Data = buf[o : o+len(fields[2]) : o+len(fields[2])]
	}
	o += len(fields[2])
	if len(fields[3]) > 0 {
		r.CustomMetadata = buf[o : o+len(fields[3]) : o+len(fields[3])]
	}
	return r, nil
}
