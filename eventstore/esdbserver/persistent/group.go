package persistent

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// A group is one persistent subscription: it reads its source ahead of its
// consumers into a bounded buffer, hands each event to a consumer chosen by
// its strategy, keeps what is unacknowledged until it is acknowledged,
// retried (after a nack or the message timeout) or parked, and checkpoints
// the position before the oldest event still unfinished. It follows
// EventStoreDB's PersistentSubscription: events get sequence numbers in the
// order they are first sent, and a checkpoint is written when enough of
// them are finished (max checkpoint count) or, on the clock, when some are
// and the checkpoint interval has passed. The checkpoint never passes an
// unfinished event, so a restart resends everything not acknowledged.
type group struct {
	m                  *Manager
	spec               Spec
	entry              configEntry
	key                string
	all                bool
	checkpointStream   string
	parkedStream       string
	log                *slog.Logger
	ctx                context.Context
	cancel             context.CancelFunc
	wg                 sync.WaitGroup
	room               chan struct{} // wakes the reader when the buffer has room
	checkpointInterval int           // $all with a filter: considered events per skip marker

	mu        sync.Mutex
	strategy  strategy
	consumers []*Consumer
	ready     bool // checkpoint loaded, reader started
	live      bool
	faulted   error // the source was deleted for good: consumers are dropped
	stopped   bool

	buffer      []*message // read, not yet sent: events and skip markers, in source order
	retries     []*message // to send again, by position; replayed parked ones last
	outstanding map[[16]byte]*outEntry
	gen         uint64
	bySeq       seqHeap
	byExpiry    expiryHeap

	nextSeq             int64
	lastCheckpointedSeq int64
	lastKnownSeq        int64
	lastKnownPos        uint64 // position of the last event sent (or skipped)
	hasLastKnown        bool
	lastCheckpointTime  time.Time
	checkpointWriting   bool
	checkpointPending   *uint64
	checkpointMetaDone  bool
	lastCheckpointed    string // stats: the latest durable checkpoint

	resumeAfter uint64 // the reader continues after this position
	hasResume   bool
	lastSeen    uint64 // stats: the highest position read
	hasSeen     bool

	totalItems  int64
	statsItems  int64
	statsAt     time.Time
	parkedLast  int64 // last revision of the parked stream, -1: none
	parkedTB    int64 // its $tb, -1: none
	oldestPark  time.Time
	replaying   bool
	replay      replayState
	parkedMetaN int
	parkQueue   []parkJob // links waiting for the parked stream, in park order
	parkWriting bool      // writeParked is draining parkQueue
}

// message is an event the group handles, or a skip marker.
type message struct {
	id        [16]byte        // ID of the original event (the link's when there is one)
	event     *storage.Record // nil: a link that could not be resolved
	link      *storage.Record
	pos       uint64 // position of the original event in the source
	retry     int
	replayed  bool  // replayed from the parked stream (no sequence number)
	parkedRev int64 // replayed: revision of its link in the parked stream
	seq       int64 // -1 until first sent
	prev      uint64
	hasPrev   bool // prev: position of the event sent (or skipped) before it
	skip      bool // marker: everything up to pos was filtered out
}

func (m *message) original() *storage.Record {
	if m.link != nil {
		return m.link
	}
	return m.event
}

// outEntry is an event sent and not yet finished.
type outEntry struct {
	msg      *message
	expires  time.Time
	gen      uint64
	parking  bool // being written to the parked stream
	consumer *Consumer
}

func newGroup(m *Manager, spec Spec, entry configEntry) *group {
	ctx, cancel := context.WithCancel(m.ctx)
	k := key(spec.Source.Stream, spec.Group)
	g := &group{
		m: m, spec: spec, entry: entry, key: k, all: spec.Source.IsAll(),
		checkpointStream: "$persistentsubscription-" + k + "-checkpoint",
		parkedStream:     "$persistentsubscription-" + k + "-parked",
		log:              m.log.With("subscription", k),
		ctx:              ctx, cancel: cancel, room: make(chan struct{}, 1),
		strategy:            newStrategy(spec.Settings.ConsumerStrategy),
		outstanding:         map[[16]byte]*outEntry{},
		lastCheckpointedSeq: -1, lastKnownSeq: -1, parkedLast: -1, parkedTB: -1,
		statsAt: m.now(),
	}
	if g.all && isFiltered(spec.Source.Filter) {
		g.checkpointInterval = min(max(spec.Settings.ReadBatchSize, spec.Settings.MaxCheckpointCount, 1), 10_000)
	}
	return g
}

// start loads the checkpoint and parked-message counts and starts reading.
func (g *group) start() {
	g.wg.Add(1)
	go g.run()
}

// stop ends the group: consumers are dropped with reason, the reader and
// pending writes finish. Unfinished events stay before the checkpoint.
func (g *group) stop(reason error) {
	g.mu.Lock()
	g.stopped = true
	consumers := slices.Clone(g.consumers)
	g.consumers = nil
	g.mu.Unlock()
	for _, c := range consumers {
		c.drop(reason)
	}
	g.cancel()
	g.wg.Wait()
}

// join adds a consumer. Errors: ErrMaxSubscribers.
func (g *group) join(c *Consumer) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return fmt.Errorf("%w: group %s is being changed", ErrNotFound, g.key)
	}
	if max := g.spec.Settings.MaxSubscriberCount; max > 0 && len(g.consumers) >= max {
		return ErrMaxSubscribers
	}
	if g.faulted != nil {
		// EventStoreDB confirms, then drops the consumer of a faulted group.
		c.drop(g.faulted)
		return nil
	}
	g.consumers = append(g.consumers, c)
	g.strategy.added(c)
	g.tryPush(g.m.now())
	return nil
}

// leave removes a consumer; what it held unacknowledged is sent again.
func (g *group) leave(c *Consumer, reason error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leaveLocked(c, reason)
	g.tryPush(g.m.now())
}

func (g *group) leaveLocked(c *Consumer, reason error) {
	if reason == nil {
		reason = fmt.Errorf("%w: the consumer left", ErrDropped)
	}
	c.drop(reason)
	if !slices.Contains(g.consumers, c) {
		return
	}
	g.consumers = without(g.consumers, c)
	g.strategy.removed(c)
	held := make([]*message, 0, len(c.inflight))
	for _, m := range c.inflight {
		held = append(held, m)
	}
	slices.SortFunc(held, func(a, b *message) int { return cmpUint(a.pos, b.pos) })
	for _, m := range held {
		if e := g.outstanding[m.id]; e != nil && !e.parking {
			g.retry(e)
		}
		delete(c.inflight, m.id)
	}
}

// tryPush sends what consumers can take: retries first, then the buffer,
// in order; a skip marker takes effect once everything before it is sent.
func (g *group) tryPush(now time.Time) {
	if g.stopped || len(g.consumers) == 0 {
		return
	}
	for i := 0; i < len(g.retries); {
		c, res := g.strategy.pick(g.retries[i])
		switch res {
		case pushNoRoom:
			return
		case pushSkipped:
			i++
			continue
		}
		m := g.retries[i]
		g.retries = slices.Delete(g.retries, i, i+1)
		g.send(c, m, now)
	}
	shrunk := false
	for i := 0; i < len(g.buffer); {
		m := g.buffer[i]
		if m.skip {
			if i == 0 {
				g.applySkip(m, now)
				g.buffer[0] = nil
				g.buffer = g.buffer[1:]
				shrunk = true
				continue
			}
			i++
			continue
		}
		c, res := g.strategy.pick(m)
		if res == pushNoRoom {
			break
		}
		if res == pushSkipped {
			i++
			continue
		}
		if i == 0 {
			g.buffer[0] = nil
			g.buffer = g.buffer[1:]
		} else {
			g.buffer = slices.Delete(g.buffer, i, i+1)
		}
		g.send(c, m, now)
		shrunk = true
	}
	if shrunk {
		g.signalRoom()
	}
}

// send gives m to c: a new event gets its sequence number and the position
// before it (for checkpoints), and stays outstanding until finished.
func (g *group) send(c *Consumer, m *message, now time.Time) {
	if !m.replayed && m.seq < 0 {
		m.seq, m.prev, m.hasPrev = g.nextSeq, g.lastKnownPos, g.hasLastKnown
		g.nextSeq++
	}
	if !m.replayed && m.seq > g.lastKnownSeq {
		g.lastKnownSeq, g.lastKnownPos, g.hasLastKnown = m.seq, m.pos, true
	}
	g.totalItems++
	c.total++
	c.inflight[m.id] = m
	if c.extraStats {
		c.sentAt[m.id] = now
	}
	if _, dup := g.outstanding[m.id]; dup {
		g.log.Warn("two events in flight share an event ID; the second is not tracked", "event_id", fmt.Sprintf("%x", m.id))
	} else {
		g.gen++
		e := &outEntry{msg: m, expires: now.Add(g.spec.Settings.MessageTimeout), gen: g.gen, consumer: c}
		g.outstanding[m.id] = e
		heap.Push(&g.byExpiry, heapItem{key: e.expires.UnixNano(), id: m.id, gen: e.gen})
		if !m.replayed {
			heap.Push(&g.bySeq, heapItem{key: m.seq, id: m.id, gen: e.gen})
		}
		g.compactHeaps()
	}
	c.deliver(Delivery{Event: m.event, Link: m.link, RetryCount: m.retry})
}

// compactHeaps drops the entries of finished events once they outnumber
// the live ones: they leave the heaps only when they reach the top, and an
// event held for long would keep every later one in memory.
func (g *group) compactHeaps() {
	if len(g.byExpiry)+len(g.bySeq) < 4*len(g.outstanding)+256 {
		return
	}
	live := func(h seqHeap) seqHeap {
		out := h[:0]
		for _, it := range h {
			if e := g.outstanding[it.id]; e != nil && e.gen == it.gen {
				out = append(out, it)
			}
		}
		clear(h[len(out):])
		heap.Init(&out)
		return out
	}
	g.byExpiry, g.bySeq = live(g.byExpiry), live(g.bySeq)
}

// applySkip takes a skip marker at the head of the buffer: everything up
// to its position was considered, so a checkpoint may pass it.
func (g *group) applySkip(m *message, now time.Time) {
	g.lastKnownPos, g.hasLastKnown = m.pos, true
	g.nextSeq++
	g.lastKnownSeq = g.nextSeq - 1
	g.tryMarkCheckpoint(false, now)
}

// ack finishes events the consumer handled.
func (g *group) ack(c *Consumer, ids [][16]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	now := g.m.now()
	for _, id := range ids {
		g.finish(id, now)
	}
	g.tryMarkCheckpoint(false, now)
	g.tryPush(now)
}

// nack applies the consumer's action to events it could not handle.
func (g *group) nack(c *Consumer, action NackAction, reason string, ids [][16]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	now := g.m.now()
	stop := false
	for _, id := range ids {
		e := g.outstanding[id]
		switch action {
		case NackStop:
			stop = true
		case NackUnknown, NackRetry:
			if e != nil && !e.parking {
				g.retryOrPark(e, now)
			}
		case NackPark:
			if e != nil && !e.parking {
				g.park(e, "Client explicitly NAK'ed message.\n"+reason, now)
			}
		default: // skip, and anything unknown
			g.finish(id, now)
		}
	}
	if stop {
		// The consumer asked to stop: it leaves, and what it held (these
		// events too) is sent to others.
		g.leaveLocked(c, fmt.Errorf("%w: the consumer nacked with stop", ErrDropped))
	}
	g.tryMarkCheckpoint(false, now)
	g.tryPush(now)
}

// finish forgets an event: handled, or skipped on request.
func (g *group) finish(id [16]byte, now time.Time) {
	if e := g.outstanding[id]; e != nil {
		delete(g.outstanding, id)
		if e.msg.replayed {
			g.replayFinished(e.msg.parkedRev)
		}
	}
	for _, c := range g.consumers {
		c.confirmed(id, now)
	}
}

// retryOrPark sends an event again, or parks it once it was retried
// MaxRetryCount times.
func (g *group) retryOrPark(e *outEntry, now time.Time) {
	if e.msg.retry >= g.spec.Settings.MaxRetryCount {
		g.park(e, fmt.Sprintf("Reached retry count of %d", g.spec.Settings.MaxRetryCount), now)
		return
	}
	g.retry(e)
}

// retry puts an outstanding event back to be sent again, one retry more.
func (g *group) retry(e *outEntry) {
	id := e.msg.id
	delete(g.outstanding, id)
	now := g.m.now()
	for _, c := range g.consumers {
		c.confirmed(id, now)
	}
	m := *e.msg
	m.retry++
	g.insertRetry(&m)
}

// insertRetry keeps retries in source order; replayed parked events last.
func (g *group) insertRetry(m *message) {
	if m.replayed {
		g.retries = append(g.retries, m)
		return
	}
	i := 0
	for i < len(g.retries) && !g.retries[i].replayed && g.retries[i].pos <= m.pos {
		i++
	}
	g.retries = slices.Insert(g.retries, i, m)
}

// tick retries what timed out and writes a checkpoint when due.
func (g *group) tick(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || !g.ready {
		return
	}
	for g.byExpiry.Len() > 0 {
		top := g.byExpiry[0]
		e := g.outstanding[top.id]
		if e == nil || e.gen != top.gen {
			heap.Pop(&g.byExpiry)
			continue
		}
		if e.expires.After(now) {
			break
		}
		heap.Pop(&g.byExpiry)
		if !e.parking {
			g.retryOrPark(e, now)
		}
	}
	g.tryPush(now)
	g.tryMarkCheckpoint(true, now)
}

// lowestOutstanding is the unfinished sent event with the lowest sequence
// number, nil if none.
func (g *group) lowestOutstanding() *message {
	for g.bySeq.Len() > 0 {
		top := g.bySeq[0]
		if e := g.outstanding[top.id]; e != nil && e.gen == top.gen {
			return e.msg
		}
		heap.Pop(&g.bySeq)
	}
	return nil
}

// addRead appends an event read from the source to the buffer.
func (g *group) addRead(m *message, pos uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resumeAfter, g.hasResume = pos, true
	if !g.hasSeen || pos > g.lastSeen {
		g.lastSeen, g.hasSeen = pos, true
	}
	g.buffer = append(g.buffer, m)
	g.tryPush(g.m.now())
}

// addSkip records that the source was read up to pos with nothing for
// the group (filtered out, or bookkeeping).
func (g *group) addSkip(pos uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resumeAfter, g.hasResume = pos, true
	if n := len(g.buffer); n > 0 && g.buffer[n-1].skip {
		g.buffer[n-1].pos = pos
	} else {
		g.buffer = append(g.buffer, &message{skip: true, pos: pos, seq: -1})
	}
	g.tryPush(g.m.now())
}

// waitRoom blocks while the buffer is full. It reports false when the
// group is stopping.
func (g *group) waitRoom() bool {
	for {
		g.mu.Lock()
		full := len(g.buffer) >= g.spec.Settings.HistoryBufferSize
		g.mu.Unlock()
		if !full {
			return g.ctx.Err() == nil
		}
		select {
		case <-g.room:
		case <-g.ctx.Done():
			return false
		}
	}
}

func (g *group) signalRoom() {
	select {
	case g.room <- struct{}{}:
	default:
	}
}

// fault drops every consumer for good: the source stream was deleted.
func (g *group) fault(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faulted = fmt.Errorf("%w: %v", ErrDropped, err)
	g.log.Error("persistent subscription faulted: dropping its consumers", "err", err)
	for _, c := range slices.Clone(g.consumers) {
		g.leaveLocked(c, g.faulted)
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// heapItem orders outstanding events by expiry or sequence number; items
// whose event finished are skipped when they come up (gen changes).
type heapItem struct {
	key int64
	id  [16]byte
	gen uint64
}

type seqHeap []heapItem

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].key < h[j].key }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(heapItem)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type expiryHeap = seqHeap

func isFiltered(f storage.Filter) bool {
	return len(f.StreamPrefixes) > 0 || len(f.TypePrefixes) > 0 || f.StreamRegex != "" || f.TypeRegex != ""
}
