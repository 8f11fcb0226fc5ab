package storage

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// maxGaps is how many runs of missing positions an error lists.
const maxGaps = 10

// verifyHistory compares what the engine holds with what the store had
// acknowledged (the head file's record): the log must reach the recorded
// head, and hold every position up to its own head except those already
// accepted as lost. A truncated MANIFEST loses a table from the middle of
// the log while the write-ahead log still brings back its end, so the
// head alone does not tell. It returns the positions the log lacks.
func (s *Store) verifyHistory(head Position, rec headState) (uint64, error) {
	missing, gaps, err := missingPositions(s.db, head, rec.Missing)
	if err != nil {
		return 0, fmt.Errorf("read the event store's log in %s: %w", s.dir, err)
	}
	if head >= rec.Head && missing <= rec.Missing {
		return missing, nil
	}
	return 0, &LostEventsError{Dir: s.dir, Head: head, Acknowledged: rec.Head, Missing: missing - min(missing, rec.Missing), Gaps: gaps}
}

// missingPositions counts the positions from 1 to head the log does not
// hold and lists the first runs of them. Every record is two keys written
// once and never deleted (its log entry and its stream index entry), so
// when the tables hold exactly twice as many entries as records are
// expected, nothing is missing and the log need not be read; otherwise
// (entries still in the write buffer, or a loss) it is read key by key.
func missingPositions(db *pebble.DB, head Position, expected uint64) (uint64, []Gap, error) {
	if head == 0 {
		return 0, nil, nil
	}
	if n, err := tableEntries(db); err == nil && n == 2*(uint64(head)-expected) {
		return expected, nil, nil
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: logKey(head + 1)})
	if err != nil {
		return 0, nil, err
	}
	defer it.Close()
	var (
		prev    Position
		missing uint64
		gaps    []Gap
	)
	for ok := it.First(); ok; ok = it.Next() {
		p := Position(beUint64(it.Key()[1:]))
		if p > prev+1 {
			missing += uint64(p - prev - 1)
			if len(gaps) < maxGaps {
				gaps = append(gaps, Gap{From: prev + 1, To: p - 1})
			}
		}
		prev = p
	}
	return missing, gaps, it.Error()
}

// tableEntries is the number of entries in the engine's tables.
func tableEntries(db *pebble.DB) (uint64, error) {
	levels, err := db.SSTables(pebble.WithProperties())
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, level := range levels {
		for _, t := range level {
			if t.Properties == nil {
				return 0, fmt.Errorf("a table has no properties")
			}
			n += t.Properties.NumEntries
		}
	}
	return n, nil
}
