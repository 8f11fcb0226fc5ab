package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ordo-dev/ordo/gather"
)

// Record types the store writes itself.
const (
	TypeMetadata      = "$metadata"
	TypeStreamDeleted = "$streamDeleted"
)

type writeKind uint8

const (
	writeAppend writeKind = iota
	writeDelete
	writeTombstone
)

type writeReq struct {
	kind   writeKind
	stream string
	exp    Expected
	events []ProposedEvent
	done   chan writeResult
}

type writeResult struct {
	res AppendResult
	err error
}

// Append appends events to stream atomically, with EventStoreDB's
// expected-revision and idempotency rules. It returns only once the events
// are durable, and only then are they visible to subscriptions.
// Errors: *WrongExpectedVersionError, an error wrapping ErrStreamDeleted, ErrClosed.
func (s *Store) Append(ctx context.Context, stream string, exp Expected, events []ProposedEvent) (AppendResult, error) {
	return s.submit(ctx, writeAppend, stream, exp, events)
}

// Delete soft-deletes stream: reads find nothing, and a later append
// continues after the last revision. It returns the position of the metadata
// record it writes.
func (s *Store) Delete(ctx context.Context, stream string, exp Expected) (Position, error) {
	r, err := s.submit(ctx, writeDelete, stream, exp, nil)
	return r.Position, err
}

// Tombstone deletes stream for good and returns the position of the
// $streamDeleted record it writes.
func (s *Store) Tombstone(ctx context.Context, stream string, exp Expected) (Position, error) {
	r, err := s.submit(ctx, writeTombstone, stream, exp, nil)
	return r.Position, err
}

// reqPool recycles write requests and their reply channels, two
// allocations per append otherwise.
var reqPool = sync.Pool{New: func() any { return &writeReq{done: make(chan writeResult, 1)} }}

func (s *Store) submit(ctx context.Context, kind writeKind, stream string, exp Expected, events []ProposedEvent) (AppendResult, error) {
	if stream == "" || strings.IndexByte(stream, 0) >= 0 {
		return AppendResult{}, fmt.Errorf("%w: stream name %q is empty or contains NUL", ErrInvalidRequest, stream)
	}
	req := reqPool.Get().(*writeReq)
	req.kind, req.stream, req.exp, req.events = kind, stream, exp, events
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		s.recycle(req)
		return AppendResult{}, ErrClosed
	}
	select {
	case s.reqs <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		s.recycle(req)
		return AppendResult{}, ctx.Err()
	}
	// Once queued, the write is carried out even if ctx ends: the caller
	// learns the outcome unless it stops waiting, and a retry with the same
	// event IDs is recognised as idempotent.
	select {
	case r := <-req.done:
		// The writer is done with req once it has answered: it goes back
		// to the pool. A request whose caller stopped waiting is not
		// reused, since the writer may still answer it.
		s.recycle(req)
		return r.res, r.err
	case <-ctx.Done():
		return AppendResult{}, ctx.Err()
	}
}

// recycle returns a request the writer no longer holds to the pool.
func (s *Store) recycle(req *writeReq) {
	*req = writeReq{done: req.done}
	reqPool.Put(req)
}

// writer is the single goroutine that decides and commits writes.
func (s *Store) writer() {
	defer close(s.stopped)
	group := make([]*writeReq, 0, s.opts.MaxGroup)
	for {
		select {
		case req := <-s.reqs:
			g := s.linger(s.fill(append(group[:0], req)))
			start := time.Now()
			events, bytes, failed := s.commitGroup(g)
			took := time.Since(start)
			s.observe(len(g), took)
			if s.opts.OnCommit != nil {
				s.opts.OnCommit(Commit{Appends: len(g), Events: events, Bytes: bytes, Duration: took, Failed: failed})
			}
			s.syncs.Add(1)
			s.synced.Add(uint64(len(g)))
		case <-s.closing:
			// Commit what was queued before Close.
			for g := s.fill(group[:0]); len(g) > 0; g = s.fill(group[:0]) {
				s.commitGroup(g)
			}
			return
		}
	}
}

// linger waits briefly for the rest of a group of concurrent writers.
//
// Writers that were answered together come back together, but not at the
// same instant: without waiting, the first one back is committed alone and
// the others queue up behind its fsync, so each of them waits two syncs and
// every other sync carries a single append. When the previous group was
// larger than what is queued now, the writer waits for that many requests,
// but never longer than two recent group commits took, nor maxLinger; a
// lone writer (previous group of one) never waits.
//
// Why two commits' time: every fdatasync costs CPU whatever it carries, so
// fuller groups make each append cheaper, and waiting two commits' time
// gathers fuller groups than one without costing a writer latency (it
// waits for no more than the group it came back with). The measurements
// are in BENCHMARKS.md ("Figures behind choices in the code").
func (s *Store) linger(group []*writeReq) []*writeReq {
	want := min(s.lastGroup, s.opts.MaxGroup)
	if len(group) >= want || s.commitTime <= 0 {
		return group
	}
	wait := min(2*s.commitTime, maxLinger)
	if s.lingerTimer == nil {
		s.lingerTimer = time.NewTimer(wait)
	} else {
		s.lingerTimer.Reset(wait)
	}
	defer s.lingerTimer.Stop()
	return gather.Until(group, s.reqs, want, s.lingerTimer.C, s.closing)
}

// observe records a committed group's size and how long committing it
// took (a moving average), for linger.
func (s *Store) observe(n int, d time.Duration) {
	s.lastGroup = n
	if s.commitTime == 0 {
		s.commitTime = d
	} else {
		s.commitTime += (d - s.commitTime) / 8
	}
	s.commitTime = min(s.commitTime, maxLinger)
}

// maxLinger bounds how long linger waits whatever the disk does.
const maxLinger = 4 * time.Millisecond

// fill adds to group whatever is queued, up to the group limit, without waiting.
func (s *Store) fill(group []*writeReq) []*writeReq {
	return gather.Queued(group, s.reqs, s.opts.MaxGroup)
}

// pendingWrite is a decided write waiting for the group's sync.
type pendingWrite struct {
	req *writeReq
	res AppendResult
	err error
}

// commitGroup decides every request in order, writes all accepted records
// in one batch, syncs it once, then publishes and answers.
//
// It allocates nothing per record: the decided records go to a slice the
// writer reuses (s.all), and keys and values are encoded into scratch
// buffers the batch copies from. The log entries go into the batch in
// position order and the stream index entries after them, sorted: pebble
// inserts a batch into the memtable's skiplist in batch order and starts
// each search from where the previous one ended, so ordered keys skip most
// of the descent the alternating log and index keys each paid in full.
//
// It returns how many events and bytes of event data and metadata the
// group committed, and whether the commit failed.
func (s *Store) commitGroup(group []*writeReq) (events, bytes int, failed bool) {
	// The states are forgotten between groups, never within one: a state
	// reloaded from disk in the middle of a group would miss the group's
	// earlier records (the bound is exceeded by at most one group).
	if len(s.states) >= maxStates {
		s.states = make(map[string]*streamState) // reloaded on demand
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	head := s.Head()
	next := head + 1
	now := s.now().UTC()
	s.all = s.all[:0]
	pending := s.pending[:0]
	for _, req := range group {
		recs, res, err := s.decide(req, next, now)
		pending = append(pending, pendingWrite{req: req, res: res, err: err})
		next += Position(len(recs))
	}
	s.pending = pending
	all := s.all
	// Drop the requests and records (and so the events' data) once answered.
	defer clear(pending)
	defer clear(all)
	if len(all) > 0 {
		s.writeBatch(batch, all)
		if err := s.commit(batch); err != nil {
			s.failGroup(pending, err)
			return 0, 0, true
		}
		s.recordWrites(all)
		s.publish(all)
		s.recordHead()
		for i := range all {
			bytes += len(all[i].Data) + len(all[i].CustomMetadata)
		}
	}
	s.answer(pending)
	return len(all), bytes, false
}

// commit writes the batch durably unless the store has failed or the disk
// is too full for it. The disk check counts the batch twice: once in the
// log now, once in the table it is flushed to later.
func (s *Store) commit(batch *pebble.Batch) error {
	if err := s.failed.Load(); err != nil {
		return *err
	}
	if err := s.disk.admit(2 * int64(batch.Len())); err != nil {
		return err
	}
	return s.syncBatch(batch)
}

// syncBatch commits the batch with a synced write. The engine reports a
// failed log write or sync through Fatalf (see engineFatal): it is turned
// into an error here, and the store refuses writes from then on, since the
// engine's commit pipeline cannot be trusted after it.
func (s *Store) syncBatch(batch *pebble.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(engineFatal)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("the event store's storage engine failed and refuses writes until the store is restarted: %w", f)
			s.failed.Store(&err)
		}
	}()
	return batch.Commit(pebble.Sync)
}

// failGroup answers every request of a group that was not written with
// err. Nothing of the group is acknowledged; the writer forgets the
// decisions it cached, since they assumed this batch.
func (s *Store) failGroup(pending []pendingWrite, err error) {
	s.states = make(map[string]*streamState)
	s.recent = make(map[[16]byte]recentID)
	if !errors.Is(err, ErrDiskFull) { // the disk guard logs its own changes
		if n, ok := s.engine.limit.allow("write failed"); ok {
			s.log.Error("event store write failed", append([]any{"err", err}, suppressed(n)...)...)
		}
	}
	wrapped := fmt.Errorf("write to disk: %w", err)
	for i := range pending {
		if pending[i].err == nil {
			pending[i].err = wrapped
		}
	}
	s.answer(pending)
}

// recordHead keeps the acknowledged head in the head file (see headFile).
func (s *Store) recordHead() {
	if err := s.headRec.record(s.Head(), s.missing); err != nil {
		if n, ok := s.engine.limit.allow("record head"); ok {
			s.log.Error("event store: recording the acknowledged head failed; a later loss of events may go unnoticed",
				append([]any{"err", err}, suppressed(n)...)...)
		}
	}
}

// writeBatch adds the records' log entries, then their stream index
// entries in key order, to batch (see commitGroup).
func (s *Store) writeBatch(batch *pebble.Batch, all []Record) {
	buf := s.scratch[:0]
	for i := range all {
		r := &all[i]
		buf = appendLogKey(buf[:0], r.Position)
		k := len(buf)
		buf = appendRecord(buf, r)
		_ = batch.Set(buf[:k], buf[k:], nil)
	}
	// Index entries: key then the 8-byte position, back to back in idx.
	idx := s.index[:0]
	ents := s.entries[:0]
	for i := range all {
		r := &all[i]
		start := len(idx)
		idx = appendStreamKey(idx, r.Stream, r.Revision)
		ents = append(ents, indexEntry{start: start, key: len(idx) - start})
		idx = binary.BigEndian.AppendUint64(idx, uint64(r.Position))
	}
	slices.SortStableFunc(ents, func(a, b indexEntry) int {
		return bytes.Compare(idx[a.start:a.start+a.key], idx[b.start:b.start+b.key])
	})
	for _, e := range ents {
		_ = batch.Set(idx[e.start:e.start+e.key], idx[e.start+e.key:e.start+e.key+8], nil)
	}
	// One large event must not pin its size in memory for good.
	if cap(buf) > maxScratch {
		buf = nil
	}
	if cap(idx) > maxScratch {
		idx = nil
	}
	s.scratch, s.index, s.entries = buf, idx, ents
}

// maxScratch is the largest encoding buffer the writer keeps between groups.
const maxScratch = 64 << 10

// indexEntry locates one stream index entry in the writer's index buffer.
type indexEntry struct{ start, key int }

func (s *Store) answer(pending []pendingWrite) {
	for i := range pending {
		pending[i].req.done <- writeResult{res: pending[i].res, err: pending[i].err}
	}
}

// publish makes committed records visible: it advances the head and hands
// the records to live subscribers without ever waiting for them. recs is
// the writer's buffer, so subscribers get a copy of it.
func (s *Store) publish(recs []Record) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	s.head.Store(uint64(recs[len(recs)-1].Position))
	if len(s.subs) == 0 {
		return
	}
	recs = slices.Clone(recs)
	for sub, ch := range s.subs {
		select {
		case ch <- recs:
		default:
			// The subscriber is too far behind: drop it back to catching up
			// from disk, so its lag costs disk reads, not memory here.
			close(ch)
			delete(s.subs, sub)
		}
	}
}

// state returns the writer's view of a stream, loading it from disk.
func (s *Store) state(stream string) (*streamState, error) {
	if st, ok := s.states[stream]; ok {
		return st, nil
	}
	st, err := s.loadState(stream, maxPosition)
	if err != nil {
		return nil, err
	}
	s.states[stream] = st
	return st, nil
}

// decide applies the expected-revision and idempotency rules to one write.
// It appends the records to write (positions from next on) to s.all and
// returns them, a tail of s.all.
func (s *Store) decide(req *writeReq, next Position, now time.Time) ([]Record, AppendResult, error) {
	st, err := s.state(req.stream)
	if err != nil {
		return nil, AppendResult{}, err
	}
	if st.tombstoned {
		return nil, AppendResult{}, fmt.Errorf("stream %q: %w", req.stream, ErrStreamDeleted)
	}
	switch req.kind {
	case writeDelete:
		return s.decideDelete(req, st, next, now)
	case writeTombstone:
		return s.decideTombstone(req, st, next, now)
	}
	if res, done, err := s.checkExpected(req, st); done || err != nil {
		return nil, res, err
	}
	if len(req.events) == 0 {
		return nil, currentResult(st), nil
	}
	start := len(s.all)
	for i, e := range req.events {
		s.all = append(s.all, Record{Position: next + Position(i), Stream: req.stream, Revision: Revision(st.last + 1 + int64(i)),
			ID: e.ID, Type: e.Type, IsJSON: e.IsJSON, Created: now, Data: e.Data, CustomMetadata: e.CustomMetadata})
	}
	recs := s.all[start:]
	last := recs[len(recs)-1]
	if isMetastream(req.stream) {
		// New metadata of a soft-deleted stream keeps it truncated (softdelete.go).
		all, err := s.keepSoftDeleted(req.stream, st.last, recs, start, next, now)
		if err != nil {
			s.all = s.all[:start]
			return nil, AppendResult{}, err
		}
		recs = all
	}
	s.accept(st, recs)
	return recs, AppendResult{Revision: last.Revision, Position: last.Position}, nil
}

// accept updates the writer's state for records about to be committed.
func (s *Store) accept(st *streamState, recs []Record) {
	last := recs[len(recs)-1]
	st.last = int64(last.Revision)
	if len(s.recent) >= maxRecentIDs {
		s.recent = make(map[[16]byte]recentID)
	}
	for _, r := range recs {
		s.recent[r.ID] = recentID{stream: r.Stream, rev: r.Revision}
	}
	if isMetastream(last.Stream) {
		if target, ok := s.states[last.Stream[2:]]; ok {
			target.meta = parseMeta(last.Data)
		}
	}
}

func currentResult(st *streamState) AppendResult {
	if st.last < 0 {
		return AppendResult{NoStream: true, NoPosition: true}
	}
	return AppendResult{Revision: Revision(st.last), NoPosition: true}
}

// softDeleted reports whether every event of the stream is hidden by $tb.
func (st *streamState) softDeleted() bool {
	return st.meta.tb > 0 && st.meta.tb > st.last
}

func (st *streamState) wev(stream string, exp Expected) *WrongExpectedVersionError {
	e := &WrongExpectedVersionError{Stream: stream, Expected: exp, CurrentNoStream: st.last < 0}
	if st.last >= 0 {
		e.Current = Revision(st.last)
	}
	return e
}

// checkExpected applies the expectation of an append. done=true means the
// append was recognised as a repeat of one already stored, with res its
// original result.
func (s *Store) checkExpected(req *writeReq, st *streamState) (res AppendResult, done bool, err error) {
	exp, evs := req.exp, req.events
	switch exp.Kind {
	case ExpectAny:
		return s.recentRepeat(req, st)
	case ExpectStreamExists:
		if st.softDeleted() {
			return res, false, fmt.Errorf("stream %q: %w", req.stream, ErrStreamDeleted)
		}
		if st.last < 0 && !st.meta.exists {
			return res, false, st.wev(req.stream, exp)
		}
		return s.recentRepeat(req, st)
	case ExpectNoStream:
		if st.last < 0 || st.softDeleted() {
			return res, false, nil
		}
		return s.repeatAt(req, st, 0)
	case ExpectRevision:
		cur := st.last
		switch {
		case int64(exp.Revision) == cur:
			return res, false, nil
		case int64(exp.Revision) > cur || len(evs) == 0:
			return res, false, st.wev(req.stream, exp)
		default:
			return s.repeatAt(req, st, exp.Revision+1)
		}
	}
	return res, false, fmt.Errorf("%w: unknown expected revision kind %d", ErrInvalidRequest, exp.Kind)
}

// repeatAt recognises a retried append: the stored events from revision
// from on carry exactly the proposed IDs. Anything else is a conflict.
func (s *Store) repeatAt(req *writeReq, st *streamState, from Revision) (AppendResult, bool, error) {
	if len(req.events) == 0 || int64(from)+int64(len(req.events))-1 > st.last {
		return AppendResult{}, false, st.wev(req.stream, req.exp)
	}
	var last Record
	for i, e := range req.events {
		r, err := s.writerRecordAt(req.stream, from+Revision(i))
		if err != nil {
			return AppendResult{}, false, err
		}
		if r.ID != e.ID {
			return AppendResult{}, false, st.wev(req.stream, req.exp)
		}
		last = r
	}
	return AppendResult{Revision: last.Revision, Position: last.Position}, true, nil
}

// recentRepeat is the best-effort idempotency of appends without an exact
// expectation: if the first event ID was appended to this stream recently,
// the whole append must match it.
func (s *Store) recentRepeat(req *writeReq, st *streamState) (AppendResult, bool, error) {
	if len(req.events) == 0 {
		return AppendResult{}, false, nil
	}
	seen, ok := s.recent[req.events[0].ID]
	if !ok || seen.stream != req.stream {
		return AppendResult{}, false, nil
	}
	return s.repeatAt(req, st, seen.rev)
}

// writerRecordAt is recordAt for the writer, which also sees the records
// decided earlier in the group it is building. Only retries and deletes
// look, so a scan of the group beats indexing every record.
func (s *Store) writerRecordAt(stream string, rev Revision) (Record, error) {
	for i := len(s.all) - 1; i >= 0; i-- {
		if r := &s.all[i]; r.Revision == rev && r.Stream == stream {
			return *r, nil
		}
	}
	return s.recordAt(stream, rev)
}

// recordAt reads a stream's record at rev through the index.
func (s *Store) recordAt(stream string, rev Revision) (Record, error) {
	v, closer, err := s.db.Get(streamKey(stream, rev))
	if err != nil {
		return Record{}, fmt.Errorf("read %s@%d: %w", stream, rev, err)
	}
	pos := Position(beUint64(v))
	closer.Close()
	return s.get(pos)
}

func (s *Store) decideDelete(req *writeReq, st *streamState, next Position, now time.Time) ([]Record, AppendResult, error) {
	if st.last < 0 && !st.meta.exists {
		return nil, AppendResult{}, st.wev(req.stream, req.exp)
	}
	if err := expectationHolds(req, st); err != nil {
		return nil, AppendResult{}, err
	}
	meta, err := s.metadataWithTB(req.stream, st.last+1)
	if err != nil {
		return nil, AppendResult{}, err
	}
	mst, err := s.state(metastreamOf(req.stream))
	if err != nil {
		return nil, AppendResult{}, err
	}
	rec := Record{Position: next, Stream: metastreamOf(req.stream), Revision: Revision(mst.last + 1),
		ID: newEventID(), Type: TypeMetadata, IsJSON: true, Created: now, Data: meta}
	s.all = append(s.all, rec)
	recs := s.all[len(s.all)-1:]
	s.accept(mst, recs)
	st.meta = parseMeta(meta)
	return recs, AppendResult{Revision: rec.Revision, Position: rec.Position}, nil
}

func (s *Store) decideTombstone(req *writeReq, st *streamState, next Position, now time.Time) ([]Record, AppendResult, error) {
	if err := expectationHolds(req, st); err != nil {
		return nil, AppendResult{}, err
	}
	rec := Record{Position: next, Stream: req.stream, Revision: TombstoneRevision, ID: newEventID(),
		Type: TypeStreamDeleted, IsJSON: true, Created: now, Data: []byte("{}")}
	st.tombstoned = true
	s.all = append(s.all, rec)
	return s.all[len(s.all)-1:], AppendResult{Revision: rec.Revision, Position: rec.Position}, nil
}

// expectationHolds checks a delete's or tombstone's expectation (no
// idempotent repeats apply to those).
func expectationHolds(req *writeReq, st *streamState) error {
	switch req.exp.Kind {
	case ExpectNoStream:
		if st.last >= 0 {
			return st.wev(req.stream, req.exp)
		}
	case ExpectStreamExists:
		if st.last < 0 {
			return st.wev(req.stream, req.exp)
		}
	case ExpectRevision:
		if int64(req.exp.Revision) != st.last {
			return st.wev(req.stream, req.exp)
		}
	}
	return nil
}

// metadataWithTB returns the stream's current metadata JSON with $tb set.
func (s *Store) metadataWithTB(stream string, tb int64) ([]byte, error) {
	m := map[string]json.RawMessage{}
	mst, err := s.state(metastreamOf(stream))
	if err != nil {
		return nil, err
	}
	if mst.last >= 0 {
		r, err := s.writerRecordAt(metastreamOf(stream), Revision(mst.last))
		if err != nil {
			return nil, err
		}
		_ = json.Unmarshal(r.Data, &m) // malformed metadata is replaced
		if m == nil {
			m = map[string]json.RawMessage{}
		}
	}
	m["$tb"] = json.RawMessage(fmt.Sprint(tb))
	return json.Marshal(m)
}

// newEventID is a random (version 4) UUID for records the store writes itself.
func newEventID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = (id[6] & 0x0f) | 0x40
	id[8] = (id[8] & 0x3f) | 0x80
	return id
}
