package persistent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// Checkpoints are events of type checkpointType in the group's checkpoint
// stream, "$persistentsubscription-<stream>::<group>-checkpoint", whose
// data is the position as a JSON string ("12", or "C:120/P:120" for $all),
// as in EventStoreDB. Each is a durable append.
const checkpointType = "$SubscriptionCheckpoint"

// tryMarkCheckpoint writes a checkpoint when due (EventStoreDB's
// TryMarkCheckpoint). The position is the one before the oldest event
// still unfinished (outstanding or waiting to be retried), or the last
// event sent when none is. It is due when MaxCheckpointCount events were
// finished since the last one, or, on a clock tick (isTimeCheck), when the
// checkpoint interval passed and at least MinCheckpointCount were.
func (g *group) tryMarkCheckpoint(isTimeCheck bool, now time.Time) {
	lowest := g.lowestOutstanding()
	for _, r := range g.retries {
		if !r.replayed && r.seq >= 0 && (lowest == nil || r.seq < lowest.seq) {
			lowest = r
		}
	}
	var seq int64
	var pos uint64
	if lowest != nil {
		if !lowest.hasPrev {
			return // the first event is unfinished: nothing to checkpoint yet
		}
		seq, pos = lowest.seq-1, lowest.prev
	} else {
		if !g.hasLastKnown {
			return
		}
		seq, pos = g.lastKnownSeq, g.lastKnownPos
	}
	diff := seq - g.lastCheckpointedSeq
	if seq < 0 || diff <= 0 {
		return
	}
	st := g.spec.Settings
	interval := st.CheckpointAfter
	if interval == 0 {
		interval = math.MaxInt64 // by count only, as EventStoreDB reads 0
	}
	if now.Sub(g.lastCheckpointTime) < interval && diff < int64(st.MaxCheckpointCount) {
		return
	}
	if (diff >= int64(st.MinCheckpointCount) && isTimeCheck) || diff >= int64(st.MaxCheckpointCount) {
		g.lastCheckpointTime = now
		g.lastCheckpointedSeq = seq
		g.writeCheckpoint(pos)
	}
}

// writeCheckpoint writes pos in the background; while a write is under
// way only the latest position waits for the next.
func (g *group) writeCheckpoint(pos uint64) {
	if g.stopped {
		return
	}
	if g.checkpointWriting {
		g.checkpointPending = &pos
		return
	}
	g.checkpointWriting = true
	firstWrite := !g.checkpointMetaDone
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		text := positionString(g.all, pos)
		err := g.m.storeCheckpoint(g.ctx, g.checkpointStream, text, firstWrite)
		g.mu.Lock()
		defer g.mu.Unlock()
		g.checkpointWriting = false
		if err != nil {
			if g.ctx.Err() == nil {
				g.log.Error("persistent subscription checkpoint not written; the next one covers it", "position", text, "err", err)
			}
		} else {
			g.checkpointMetaDone = true
			g.lastCheckpointed = text
		}
		if next := g.checkpointPending; next != nil {
			g.checkpointPending = nil
			g.writeCheckpoint(*next)
		}
	}()
}

// storeCheckpoint appends one checkpoint; the first of a group instance
// also gives the stream {"$maxCount": 2} metadata unless it has some.
func (m *Manager) storeCheckpoint(ctx context.Context, stream, pos string, first bool) error {
	if first {
		if err := ensureMaxCount(ctx, m.store, stream, 2); err != nil {
			return err
		}
	}
	data, _ := json.Marshal(pos)
	_, err := m.store.Append(ctx, stream, storage.Expected{Kind: storage.ExpectAny},
		[]storage.ProposedEvent{{ID: uuid.New(), Type: checkpointType, IsJSON: true, Data: data}})
	return err
}

// loadCheckpoint reads a group's latest checkpoint; ok is false when it
// has none.
func (m *Manager) loadCheckpoint(ctx context.Context, stream string, all bool) (pos uint64, ok bool, err error) {
	var text string
	err = m.store.ReadStream(ctx, stream, 0, true, storage.Backwards, 1, func(r storage.Record) error {
		if r.Type != checkpointType && r.Type != "SubscriptionCheckpoint" {
			return nil
		}
		ok = true
		return json.Unmarshal(r.Data, &text)
	})
	if errors.Is(err, storage.ErrStreamNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read checkpoint %s: %w", stream, err)
	}
	if !ok {
		return 0, false, nil
	}
	pos, err = parsePosition(all, text)
	if err != nil {
		return 0, false, fmt.Errorf("checkpoint %s: %w", stream, err)
	}
	return pos, true, nil
}
