package persistent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// Parked events are links ($> "<revision>@<stream>") in the group's parked
// stream, "$persistentsubscription-<stream>::<group>-parked", with the
// reason in their metadata, as in EventStoreDB. Replaying them sends the
// events again; the parked stream is then truncated ($tb) past those that
// were handled. Unlike EventStoreDB, which truncates as soon as it has
// queued them, it truncates only past events acknowledged, skipped or
// parked again, so a crash during a replay loses none.

// parkedMeta is the metadata of a parked link (EventStoreDB's
// ParkedMessageMetadata).
type parkedMeta struct {
	Added                   time.Time `json:"added"`
	Reason                  string    `json:"reason"`
	SubscriptionEventNumber uint64    `json:"subscriptionEventNumber"`
}

// park queues e's event for the parked stream. The event stays
// outstanding (holding the checkpoint back) until its link is durable; its
// consumer's slot is free at once. One writer per group appends the links
// in the order events were parked, so the parked stream (and a replay of
// it) keeps that order, as EventStoreDB's single writer queue does.
func (g *group) park(e *outEntry, reason string, now time.Time) {
	e.parking = true
	for _, c := range g.consumers {
		c.confirmed(e.msg.id, now)
	}
	m := e.msg
	target := m.original()
	data := []byte(strconv.FormatUint(uint64(target.Revision), 10) + "@" + target.Stream)
	if m.event != nil {
		data = []byte(strconv.FormatUint(uint64(m.event.Revision), 10) + "@" + m.event.Stream)
	} else if m.link != nil {
		data = m.link.Data // an unresolved link is parked as it is
	}
	meta, _ := json.Marshal(parkedMeta{Added: now, Reason: reason, SubscriptionEventNumber: uint64(target.Revision)})
	g.parkQueue = append(g.parkQueue, parkJob{entry: e, data: data, meta: meta, at: now})
	if g.parkWriting {
		return
	}
	g.parkWriting = true
	g.wg.Add(1)
	go g.writeParked()
}

// parkJob is a link waiting to be appended to the parked stream.
type parkJob struct {
	entry *outEntry
	data  []byte
	meta  []byte
	at    time.Time
}

// writeParked appends queued links one at a time until the queue is empty.
func (g *group) writeParked() {
	defer g.wg.Done()
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.parkQueue) > 0 && !g.stopped {
		j := g.parkQueue[0]
		g.parkQueue[0] = parkJob{}
		g.parkQueue = g.parkQueue[1:]
		g.mu.Unlock()
		res, err := g.m.store.Append(g.ctx, g.parkedStream, storage.Expected{Kind: storage.ExpectAny},
			[]storage.ProposedEvent{{ID: uuid.New(), Type: storage.TypeLink, Data: j.data, CustomMetadata: j.meta}})
		g.mu.Lock()
		if g.stopped {
			break
		}
		g.parked(j, res, err)
	}
	g.parkWriting = false
}

// parked records the outcome of one parked-stream append; g.mu is held.
func (g *group) parked(j parkJob, res storage.AppendResult, err error) {
	e, m := j.entry, j.entry.msg
	cur := g.outstanding[m.id]
	if err != nil {
		g.log.Error("event not parked; it will be sent again", "event", string(j.data), "err", err)
		if cur == e {
			e.parking = false
			g.retry(e)
		}
	} else {
		g.parkedLast = max(g.parkedLast, int64(res.Revision))
		if g.oldestPark.IsZero() {
			g.oldestPark = j.at
		}
		if cur == e {
			delete(g.outstanding, m.id)
			if m.replayed {
				g.replayFinished(m.parkedRev)
			}
		}
	}
	now := g.m.now()
	g.tryMarkCheckpoint(false, now)
	g.tryPush(now)
}

// loadParkedStats reads the parked stream's last revision and $tb, for the
// parked-message count.
func (g *group) loadParkedStats(ctx context.Context) error {
	last, tb := int64(-1), int64(-1)
	err := g.m.store.ReadStream(ctx, g.parkedStream, 0, true, storage.Backwards, 1, func(r storage.Record) error {
		last = int64(r.Revision)
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrStreamNotFound) {
		return err
	}
	err = g.m.store.ReadStream(ctx, "$$"+g.parkedStream, 0, true, storage.Backwards, 1, func(r storage.Record) error {
		var m struct {
			TB *int64 `json:"$tb"`
		}
		if json.Unmarshal(r.Data, &m) == nil && m.TB != nil {
			tb = *m.TB
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrStreamNotFound) {
		return err
	}
	g.mu.Lock()
	g.parkedLast, g.parkedTB = max(g.parkedLast, last), tb
	g.mu.Unlock()
	return nil
}

// parkedCount is EventStoreDB's ParkedMessageCount.
func (g *group) parkedCount() int64 {
	switch {
	case g.parkedLast < 0:
		return 0
	case g.parkedTB < 0:
		return g.parkedLast + 1
	}
	return max(g.parkedLast-g.parkedTB+1, 0)
}

// replayState tracks a replay of parked events.
type replayState struct {
	end     int64              // revisions below end are being replayed
	read    bool               // all of them were read
	pending map[int64]struct{} // replayed revisions not yet handled
	writing bool               // a $tb write is under way
}

// startReplay replays the parked events below stopAt (all when nil): they
// go to the consumers ahead of new events, with retry count 0. A replay
// already under way answers success and carries on, as in EventStoreDB.
func (g *group) startReplay(stopAt *int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.replaying || g.stopped {
		return
	}
	end := g.parkedLast + 1
	if stopAt != nil {
		end = min(end, *stopAt)
	}
	if end <= 0 {
		return
	}
	g.replaying = true
	g.replay = replayState{end: end, pending: map[int64]struct{}{}}
	g.wg.Add(1)
	go g.readParked(end)
}

// readParked reads the parked stream up to end in batches, each when the
// retry buffer has room, resolving each link to its event.
func (g *group) readParked(end int64) {
	defer g.wg.Done()
	batch := max(g.spec.Settings.ReadBatchSize, 1)
	next := storage.Revision(0)
	for {
		if !g.waitRetryRoom() {
			return
		}
		var links []storage.Record
		err := g.m.store.ReadStream(g.ctx, g.parkedStream, next, false, storage.Forwards, uint64(batch), func(r storage.Record) error {
			if int64(r.Revision) >= end {
				return errStopRead
			}
			links = append(links, r)
			return nil
		})
		if err != nil && !errors.Is(err, errStopRead) && !errors.Is(err, storage.ErrStreamNotFound) {
			if g.ctx.Err() == nil {
				g.log.Error("replaying parked events stopped", "err", err)
			}
			g.mu.Lock()
			g.replaying = false
			g.mu.Unlock()
			return
		}
		msgs := make([]*message, 0, len(links))
		for i := range links {
			l := &links[i]
			target, ok, err := g.m.store.ResolveLink(g.ctx, l)
			if err != nil {
				return
			}
			m := &message{id: l.ID, link: l, replayed: true, parkedRev: int64(l.Revision), seq: -1, pos: uint64(l.Revision)}
			if ok {
				m.event = &target
			}
			msgs = append(msgs, m)
		}
		done := len(links) < batch || (len(links) > 0 && int64(links[len(links)-1].Revision)+1 >= end)
		g.mu.Lock()
		for _, m := range msgs {
			if m.event == nil {
				continue // its event is gone: nothing to replay (EventStoreDB skips it too)
			}
			g.replay.pending[m.parkedRev] = struct{}{}
			g.insertRetry(m)
		}
		if done {
			g.replay.read = true
		}
		g.tryPush(g.m.now())
		g.truncateReplayed()
		g.mu.Unlock()
		if done {
			return
		}
		next = links[len(links)-1].Revision + 1
	}
}

var errStopRead = errors.New("stop reading")

// waitRetryRoom blocks while the retry buffer is full.
func (g *group) waitRetryRoom() bool {
	for {
		g.mu.Lock()
		full := len(g.retries) >= g.spec.Settings.HistoryBufferSize
		g.mu.Unlock()
		if !full {
			return g.ctx.Err() == nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-g.ctx.Done():
			return false
		}
	}
}

// replayFinished records that a replayed event was handled (or parked
// again), so the parked stream may be truncated past it.
func (g *group) replayFinished(rev int64) {
	if g.replay.pending == nil {
		return
	}
	delete(g.replay.pending, rev)
	g.truncateReplayed()
}

// truncateReplayed moves the parked stream's $tb past every replayed event
// handled, in the background; the replay ends once all were.
func (g *group) truncateReplayed() {
	if !g.replaying || g.replay.writing || g.stopped {
		return
	}
	tb := g.replay.end
	if !g.replay.read {
		tb = -1 // not all read yet: the lowest pending is not known
	}
	for rev := range g.replay.pending {
		if tb < 0 || rev < tb {
			tb = rev
		}
	}
	if tb <= g.parkedTB || tb <= 0 {
		if g.replay.read && len(g.replay.pending) == 0 {
			g.replaying = false
		}
		return
	}
	g.replay.writing = true
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		meta := fmt.Sprintf(`{"$tb":%d}`, tb)
		_, err := g.m.store.Append(g.ctx, "$$"+g.parkedStream, storage.Expected{Kind: storage.ExpectAny},
			[]storage.ProposedEvent{{ID: uuid.New(), Type: storage.TypeMetadata, IsJSON: true, Data: []byte(meta)}})
		g.mu.Lock()
		defer g.mu.Unlock()
		g.replay.writing = false
		if err != nil {
			if g.ctx.Err() == nil {
				g.log.Error("parked stream not truncated after a replay; its events may be replayed again", "err", err)
			}
			return
		}
		g.parkedTB = max(g.parkedTB, tb)
		g.oldestPark = time.Time{}
		g.truncateReplayed()
	}()
}
