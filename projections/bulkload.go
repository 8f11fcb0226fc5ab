package projections

import (
	"context"
	"errors"
	"fmt"
)

// History is what a Source may offer besides its subscription: a bulk
// read of the stored order events. A rebuild reads the history once, from
// its checkpoint to the head, and a plain read is cheaper than a
// subscription's catch-up (no filter checkpoints, no switch to live) and
// may read several ranges of the log at once.
type History interface {
	// ReadOrders calls fn for every order-stream event after position
	// after (exclusive; 0 reads from the start), in $all order, up to the
	// head as the read finds it. fn must not keep the event. It returns
	// fn's error, ctx's, or the read's.
	ReadOrders(ctx context.Context, after uint64, fn func(*StoredEvent) error) error
}

// Chunks of a bulk load, in events. The first chunks are small, so the
// writer starts while the reader is still reading and a rebuild shows
// progress (and keeps it across a Ctrl-C) at once; later ones grow, to
// fold more of each order's events into one row write and to commit
// rarely. The largest bounds the memory a load holds: about three chunks
// of decoded events (one being read, one queued, one being written).
var (
	firstLoadChunk = 256
	maxLoadChunk   = 1 << 16
)

// load applies the history from the runner's checkpoint up to the head,
// read through h in chunks, each applied as one batch — read, folded in
// memory, written once per row, checkpoint in the same transaction —
// exactly as Run would apply it, so an interrupted load resumes from its
// last chunk, and Run takes over from where it ends. An event that cannot
// be applied stops the projection, as in Run; after any other failure Run
// can take over from the last chunk applied (after errFenced, from the
// checkpoint of the runner that got ahead).
func (r *Runner) load(ctx context.Context, h History) error {
	st, err := r.start(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return r.fail(ctx, err)
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []item, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		readErr <- readChunks(rctx, h, st.Position, chunks)
	}()
	var applyErr error
	for chunk := range chunks {
		if applyErr == nil {
			applyErr = r.applyItems(ctx, chunk, true)
			if applyErr != nil {
				cancel() // and drain what the reader had queued
			}
		}
	}
	rerr := <-readErr
	switch {
	case ctx.Err() != nil:
		r.setStatus(func(s *Status) { s.Running = false })
		return ctx.Err()
	case errors.Is(applyErr, errFenced):
		// Another runner fills these read models too; Run resumes after it.
		r.fenced(applyErr)
		return applyErr
	case applyErr != nil:
		return r.fail(ctx, applyErr)
	case rerr != nil:
		return r.fail(ctx, fmt.Errorf("read the order events after position %d: %w", st.Position, rerr))
	}
	return nil
}

// readChunks reads the history after position after and sends it to out
// in decoded chunks of growing size.
func readChunks(ctx context.Context, h History, after uint64, out chan<- []item) error {
	size := firstLoadChunk
	chunk := make([]item, 0, size)
	send := func() error {
		select {
		case out <- chunk:
		case <-ctx.Done():
			return ctx.Err()
		}
		size = min(2*size, maxLoadChunk)
		chunk = make([]item, 0, size)
		return nil
	}
	err := h.ReadOrders(ctx, after, func(e *StoredEvent) error {
		if chunk = append(chunk, eventItem(e)); len(chunk) == size {
			return send()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = send()
	}
	return err
}
