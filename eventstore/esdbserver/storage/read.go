package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// errStop ends an iteration early without error.
var errStop = errors.New("stop")

// ReadStream calls fn for up to limit records (0: no limit) of stream, from
// revision from (inclusive) or from the end, in direction dir. Events hidden
// by the stream's metadata ($tb after a soft delete, $maxCount, $maxAge) are
// skipped; a metastream shows only its latest event.
// Errors: ErrStreamNotFound, an error wrapping ErrStreamDeleted, or fn's error.
func (s *Store) ReadStream(ctx context.Context, stream string, from Revision, fromEnd bool, dir Direction, limit uint64, fn func(Record) error) error {
	if err := s.checkContext(ctx); err != nil {
		return err
	}
	// Only durable records are read (see loadState).
	head := s.Head()
	st, err := s.readState(stream, head)
	if err != nil {
		return err
	}
	if st.tombstoned {
		return fmt.Errorf("stream %q: %w", stream, ErrStreamDeleted)
	}
	// A metastream goes with its stream: once the stream is tombstoned its
	// metadata is deleted too, as in EventStoreDB.
	if isMetastream(stream) {
		gone, err := s.tombstonedAt(stream[2:], head)
		if err != nil {
			return err
		}
		if gone {
			return fmt.Errorf("stream %q: %w", stream[2:], ErrStreamDeleted)
		}
	}
	first := st.firstVisible(stream)
	if st.last < 0 || first > st.last {
		return fmt.Errorf("stream %q: %w", stream, ErrStreamNotFound)
	}
	cutoff := int64(0)
	if st.meta.maxAge > 0 {
		cutoff = s.now().Add(-st.meta.maxAge).UnixNano()
	}
	// Revisions are compared as unsigned numbers: the client may ask for any
	// uint64, and one at or above 2^63 must not wrap to a negative start.
	beyond := uint64(from) > uint64(st.last)
	if dir == Forwards && (fromEnd || beyond) {
		return nil
	}
	lower, upper := streamBounds(stream)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	var ok bool
	switch {
	case dir == Forwards:
		ok = it.SeekGE(streamKey(stream, Revision(max64(int64(from), first))))
	case fromEnd || beyond:
		ok = it.SeekLT(streamKey(stream, TombstoneRevision))
	default:
		ok = it.SeekGE(streamKey(stream, from))
		if ok && revFromStreamKey(it.Key()) != from {
			ok = it.Prev()
		}
	}
	var n uint64
	for ; ok; ok = step(it, dir) {
		rev := revFromStreamKey(it.Key())
		if rev == TombstoneRevision || int64(rev) < first {
			if dir == Backwards {
				break
			}
			continue
		}
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		pos := Position(beUint64(it.Value()))
		if pos > head {
			// Revisions and positions of one stream grow together.
			if dir == Forwards {
				break
			}
			continue
		}
		r, err := s.get(pos)
		if err != nil {
			return err
		}
		if cutoff > 0 && r.Created.UnixNano() < cutoff {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
		if n++; limit > 0 && n >= limit {
			break
		}
	}
	return it.Error()
}

// tombstonedAt reports whether stream has a durable tombstone (at or
// below head).
func (s *Store) tombstonedAt(stream string, head Position) (bool, error) {
	v, closer, err := s.db.Get(streamKey(stream, TombstoneRevision))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read tombstone of %s: %w", stream, err)
	}
	defer closer.Close()
	return Position(beUint64(v)) <= head, nil
}

func step(it *pebble.Iterator, dir Direction) bool {
	if dir == Forwards {
		return it.Next()
	}
	return it.Prev()
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// firstVisible is the lowest revision a read shows, after $tb and
// $maxCount (and a metastream's implicit $maxCount of 1).
func (st *streamState) firstVisible(stream string) int64 {
	first := st.meta.tb
	maxCount := st.meta.maxCount
	if isMetastream(stream) {
		maxCount = 1
	}
	if maxCount > 0 && st.last-maxCount+1 > first {
		first = st.last - maxCount + 1
	}
	return first
}

// ReadAll reads the global log: forwards from position from (inclusive; from
// the end: nothing), backwards from before from (exclusive; from the end:
// from the last record), up to limit records (0: no limit) that match f.
func (s *Store) ReadAll(ctx context.Context, from Position, fromEnd bool, dir Direction, limit uint64, f Filter, fn func(Record) error) error {
	if err := s.checkContext(ctx); err != nil {
		return err
	}
	match, err := f.compile()
	if err != nil {
		return err
	}
	head := s.Head()
	var lo, hi Position // inclusive range to scan
	switch {
	case dir == Forwards && fromEnd:
		return nil
	case dir == Forwards:
		lo, hi = max(from, 1), head
	case fromEnd:
		lo, hi = 1, head
	default:
		lo, hi = 1, min(from-1, head)
		if from == 0 {
			return nil
		}
	}
	if lo > hi {
		return nil
	}
	return s.scan(ctx, lo, hi, dir, func(r Record) error {
		if !match(r.Stream, r.Type) {
			return nil
		}
		if err := fn(r); err != nil {
			return err
		}
		if limit > 0 {
			if limit--; limit == 0 {
				return errStop
			}
		}
		return nil
	})
}

// scan calls fn for every record with position in [lo, hi] in direction dir.
func (s *Store) scan(ctx context.Context, lo, hi Position, dir Direction, fn func(Record) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(lo), UpperBound: logKey(hi + 1)})
	if err != nil {
		return err
	}
	defer it.Close()
	ok := it.First()
	if dir == Backwards {
		ok = it.Last()
	}
	for n := 0; ok; ok = step(it, dir) {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r, err := decodeRecord(Position(beUint64(it.Key()[1:])), it.Value())
		if err != nil {
			return fmt.Errorf("record at %d: %w", beUint64(it.Key()[1:]), err)
		}
		if err := fn(r); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
	return it.Error()
}

func isStop(err error) bool     { return errors.Is(err, errStop) }
func isNotFound(err error) bool { return errors.Is(err, ErrStreamNotFound) }
func isDeleted(err error) bool  { return errors.Is(err, ErrStreamDeleted) }
