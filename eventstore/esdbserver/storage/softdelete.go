package storage

import (
	"encoding/json"
	"time"
)

// keepSoftDeleted runs in the writer after it decided an append to the
// metastream of a stream: new metadata must not bring back the events a
// soft delete removed. EventStoreDB writes the new metadata once more with
// $tb set to the stream's next revision (StorageWriterService's
// SoftUndeleteMetastream), so the deleted events stay truncated whatever
// metadata is written later; this does the same, in the same group commit.
//
// prevLast is the metastream's last revision before the append, recs the
// records just decided (a tail of s.all starting at start). It returns the
// records to write: recs, plus the rewritten metadata when the stream is
// soft-deleted. It only reads; the caller accepts what it returns.
func (s *Store) keepSoftDeleted(metastream string, prevLast int64, recs []Record, start int, next Position, now time.Time) ([]Record, error) {
	tb, deleted, err := s.softDeletedBeforeMetaWrite(metastream, prevLast)
	if err != nil || !deleted {
		return recs, err
	}
	data := metadataKeepingTB(recs[len(recs)-1].Data, tb)
	rec := Record{Position: next + Position(len(recs)), Stream: metastream, Revision: recs[len(recs)-1].Revision + 1,
		ID: newEventID(), Type: TypeMetadata, IsJSON: true, Created: now, Data: data}
	s.all = append(s.all, rec)
	return s.all[start:], nil
}

// softDeletedBeforeMetaWrite reports whether the stream of metastream was
// soft-deleted when its metadata was last written (prevLast is the
// metastream's last revision before this append): the metadata then held a
// $tb beyond the stream's last event. It returns the $tb to keep: the
// stream's next revision.
func (s *Store) softDeletedBeforeMetaWrite(metastream string, prevLast int64) (int64, bool, error) {
	if prevLast < 0 {
		return 0, false, nil // no metadata before: never deleted
	}
	st, err := s.state(metastream[2:])
	if err != nil || st.tombstoned {
		return 0, false, err
	}
	prev, err := s.writerRecordAt(metastream, Revision(prevLast))
	if err != nil {
		return 0, false, err
	}
	var m struct {
		TB *json.Number `json:"$tb"`
	}
	if json.Unmarshal(prev.Data, &m) != nil || m.TB == nil {
		return 0, false, nil
	}
	tb, err := m.TB.Int64()
	if err != nil || tb <= st.last {
		return 0, false, nil
	}
	return st.last + 1, true, nil
}

// metadataKeepingTB is data with "$tb" set to tb; data that is not a JSON
// object is replaced by one holding only $tb (its stream stays deleted).
func metadataKeepingTB(data []byte, tb int64) []byte {
	m := map[string]json.RawMessage{}
	if json.Unmarshal(data, &m) != nil || m == nil {
		m = map[string]json.RawMessage{}
	}
	m["$tb"] = json.RawMessage(jsonInt(tb))
	out, _ := json.Marshal(m)
	return out
}

func jsonInt(n int64) []byte {
	b, _ := json.Marshal(n)
	return b
}
