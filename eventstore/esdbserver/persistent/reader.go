package persistent

import (
	"errors"
	"time"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// run prepares the group (checkpoint, parked counts) and then reads its
// source into the buffer until the group stops. Reading goes through the
// store's own subscriptions, which catch up from disk and then follow the
// writer live; the reader takes one event at a time, only while the buffer
// has room, so a group without consumers reads no further ahead than its
// history buffer.
func (g *group) run() {
	defer g.wg.Done()
	if !g.prepare() {
		return
	}
	for g.ctx.Err() == nil {
		err := g.follow()
		switch {
		case g.ctx.Err() != nil, errors.Is(err, storage.ErrClosed):
			return
		case errors.Is(err, storage.ErrStreamDeleted):
			g.fault(err)
			return
		}
		g.log.Error("persistent subscription reader failed; resuming in a second", "err", err)
		select {
		case <-time.After(time.Second):
		case <-g.ctx.Done():
		}
	}
}

// prepare loads the checkpoint and the parked-message counts, retrying
// until the store answers; it reports false when the group stopped.
func (g *group) prepare() bool {
	for {
		pos, ok, err := g.m.loadCheckpoint(g.ctx, g.checkpointStream, g.all)
		if err == nil {
			err = g.loadParkedStats(g.ctx)
		}
		if err == nil {
			g.mu.Lock()
			if ok {
				// As EventStoreDB: the checkpointed event counts as the one
				// before the next, so the next checkpoint can follow it.
				g.resumeAfter, g.hasResume = pos, true
				g.nextSeq, g.lastCheckpointedSeq, g.lastKnownSeq = 1, 0, 0
				g.lastKnownPos, g.hasLastKnown = pos, true
				g.lastCheckpointed = positionString(g.all, pos)
			} else {
				g.resumeAfter, g.hasResume = g.startAfter()
			}
			g.ready = true
			g.mu.Unlock()
			return true
		}
		if g.ctx.Err() != nil || errors.Is(err, storage.ErrClosed) {
			return false
		}
		g.log.Error("persistent subscription cannot load its checkpoint; retrying in a second", "err", err)
		select {
		case <-time.After(time.Second):
		case <-g.ctx.Done():
			return false
		}
	}
}

// startAfter is where a group without a checkpoint reads from (exclusive):
// the start it was given, or for the end, where the end was when it was
// created or updated.
func (g *group) startAfter() (uint64, bool) {
	if g.spec.Start.End {
		if g.entry.StartAfter != nil {
			return *g.entry.StartAfter, true
		}
		return 0, false
	}
	if g.spec.Start.At == 0 {
		return 0, false
	}
	return g.spec.Start.At - 1, true
}

// follow subscribes after the resume point and feeds the buffer until the
// subscription ends.
func (g *group) follow() error {
	g.mu.Lock()
	after, has := g.resumeAfter, g.hasResume
	g.mu.Unlock()
	var sub *storage.Subscription
	var err error
	if g.all {
		opts := storage.SubscribeAllOptions{Filter: g.spec.Source.Filter, CheckpointInterval: g.checkpointInterval,
			From: storage.Position(after), FromStart: !has}
		sub, err = g.m.store.SubscribeAll(g.ctx, opts)
	} else {
		sub, err = g.m.store.SubscribeStream(g.ctx, g.spec.Source.Stream,
			storage.SubscribeStreamOptions{From: storage.Revision(after), FromStart: !has})
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	for {
		if !g.waitRoom() {
			return g.ctx.Err()
		}
		msg, err := sub.Next(g.ctx)
		if err != nil {
			return err
		}
		switch msg.Kind {
		case storage.MessageRecord:
			g.take(msg.Record)
		case storage.MessageCheckpoint:
			g.addSkip(uint64(msg.Checkpoint))
		case storage.MessageCaughtUp:
			g.mu.Lock()
			g.live = true
			g.mu.Unlock()
		}
	}
}

// take turns a record of the source into a message for the buffer.
func (g *group) take(r storage.Record) {
	pos := uint64(r.Revision)
	if g.all {
		pos = uint64(r.Position)
		// The group's own checkpoints and parked events (and those of
		// other groups on $all) never reach it, as in EventStoreDB.
		if storage.IsAllBookkeeping(r.Stream) {
			g.addSkip(pos)
			return
		}
	} else if r.Revision == storage.TombstoneRevision {
		return // the subscription ends with ErrStreamDeleted next
	}
	rec := r
	m := &message{id: r.ID, event: &rec, pos: pos, seq: -1}
	if g.spec.Settings.ResolveLinkTos && r.Type == storage.TypeLink {
		target, ok, err := g.m.store.ResolveLink(g.ctx, &rec)
		if err != nil && g.ctx.Err() == nil {
			g.log.Error("link not resolved; sent as it is", "link", string(r.Data), "err", err)
		}
		m.link, m.event = &rec, nil
		if ok {
			m.event = &target
		}
	}
	g.addRead(m, pos)
}
