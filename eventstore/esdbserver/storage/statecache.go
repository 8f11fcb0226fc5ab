package storage

import (
	"hash/maphash"
	"sync"
)

// readStates remembers, for readers, what loadState found for a stream as
// of some head, so that a read of a stream that has not changed since
// (most of them: a command's aggregate catching up, the stock API checking
// an order) skips the two index seeks that finding the last revision and
// the metadata costs.
//
// The writer is the only writer of the files, so it knows every change:
// after a group is durable and before the head moves past it, it records
// for each stream the group wrote (and, for a metastream, the stream it
// describes) the state it holds for its own decisions, as of the group's
// last position, or, when it holds none, a mark that the stream changed
// there. A state is used only by a reader whose head is at or past the
// position it is as of, and a state computed before a write is never
// stored after the writer recorded that write; together these mean a
// reader gets exactly what loadState would return for its head. So a
// stream read soon after it was written (an order the stock API checks, an
// aggregate catching up) costs no index seek for its state.
type readStates struct {
	seed   maphash.Seed
	shards [readStateShards]readStateShard
}

const (
	readStateShards = 16
	// readStatesPerShard bounds the cache (marks included): an entry is a
	// stream name and a few words, and a full shard is emptied and refilled
	// on demand.
	readStatesPerShard = 8192
)

type readStateShard struct {
	mu sync.Mutex
	m  map[string]readState
	// floor is the highest touch this shard has forgotten (when it was
	// emptied): a state computed before it may predate that touch, so it is
	// not stored.
	floor      Position
	maxTouched Position
}

// readState is a stream's state as of asOf, or, when touched is set, the
// mark of a write at that position which made any earlier state stale.
type readState struct {
	st      streamState
	asOf    Position
	touched Position
}

func newReadStates() *readStates {
	rs := &readStates{seed: maphash.MakeSeed()}
	for i := range rs.shards {
		rs.shards[i].m = make(map[string]readState)
	}
	return rs
}

func (rs *readStates) shard(stream string) *readStateShard {
	return &rs.shards[maphash.String(rs.seed, stream)%readStateShards]
}

// get returns the stream's state for a reader at head, if one is known.
func (rs *readStates) get(stream string, head Position) (streamState, bool) {
	sh := rs.shard(stream)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[stream]
	if !ok || e.touched != 0 || e.asOf > head {
		return streamState{}, false
	}
	return e.st, true
}

// put stores the state loadState found as of asOf, unless a write the
// state may predate has been marked since.
func (rs *readStates) put(stream string, st streamState, asOf Position) {
	sh := rs.shard(stream)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if asOf < sh.floor {
		return
	}
	if e, ok := sh.m[stream]; ok && (e.touched > asOf || (e.touched == 0 && e.asOf >= asOf)) {
		return
	}
	sh.makeRoom()
	sh.m[stream] = readState{st: st, asOf: asOf}
}

// touch records that stream was written at pos: its state as of pos
// when st is not nil, else only the mark. The writer calls it after the
// write is durable and before the head reaches pos.
func (rs *readStates) touch(stream string, pos Position, st *streamState) {
	sh := rs.shard(stream)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[stream]; !ok {
		sh.makeRoom()
	}
	if st != nil {
		sh.m[stream] = readState{st: *st, asOf: pos}
	} else {
		sh.m[stream] = readState{touched: pos}
	}
	sh.maxTouched = max(sh.maxTouched, pos)
}

// makeRoom empties a full shard; the touches it forgets raise its floor.
func (sh *readStateShard) makeRoom() {
	if len(sh.m) < readStatesPerShard {
		return
	}
	clear(sh.m)
	sh.floor = sh.maxTouched
}

// recordWrites records every stream the committed group changed (the
// stream each record was written to and, for metadata, the stream it
// describes) with the writer's state of it, as of the group's last
// position: the writer's states already include the whole group.
func (s *Store) recordWrites(recs []Record) {
	asOf := recs[len(recs)-1].Position
	for i := range recs {
		stream := recs[i].Stream
		if i+1 < len(recs) && recs[i+1].Stream == stream {
			continue // recorded with the stream's last record of the run
		}
		s.reads.touch(stream, asOf, s.states[stream])
		if isMetastream(stream) {
			s.reads.touch(stream[2:], asOf, s.states[stream[2:]])
		}
	}
}

// readState returns loadState's answer for a reader at head, from the
// cache when it holds one.
func (s *Store) readState(stream string, head Position) (streamState, error) {
	if st, ok := s.reads.get(stream, head); ok {
		return st, nil
	}
	st, err := s.loadState(stream, head)
	if err != nil {
		return streamState{}, err
	}
	s.reads.put(stream, *st, head)
	return *st, nil
}
