package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/gather"
	"github.com/ordo-dev/ordo/retry"
)

// pending is one queued command (or, with a nil Command, a read).
type pending struct {
	ctx  context.Context // nil from Submit
	req  StockRequest
	done func(StockResult)
}

// lane is the single writer of one SKU.
type lane struct {
	svc  *StockService
	sku  string
	in   chan *pending
	stop chan struct{}
	// mu guards retired: senders hold it for reading while they queue, the
	// lane takes it for writing to leave, so nothing is queued on a lane
	// that no longer runs.
	mu      sync.RWMutex
	retired bool
	stock   *domain.Stock   // nil until loaded, and after a failed append
	gen     uint64          // the writer term (see WriteWhile) in which stock was loaded
	added   map[string]bool // command IDs of the AddStock commands folded, so a retried AddStock adds once
	results []StockResult   // reused by every batch
	handled atomic.Int64    // commands taken, for Busiest
}

func (l *lane) run() {
	defer l.svc.wg.Done()
	idle := time.NewTimer(l.svc.opts.IdleStop)
	defer idle.Stop()
	batch := make([]*pending, 0, l.svc.opts.MaxBatch)
	target := 0 // how many commands the next batch is expected to gather (see linger)
	for {
		select {
		case <-l.stop:
			l.leave()
			return
		case <-idle.C:
			if l.svc.retire(l) {
				return
			}
			idle.Reset(l.svc.opts.IdleStop)
			continue
		case p := <-l.in:
			batch = append(batch[:0], p)
		}
		batch = gather.Queued(batch, l.in, cap(batch))
		l.linger(&batch, target)
		queued := l.process(batch)
		l.handled.Add(int64(len(batch)))
		// The callers just answered come back with their next command
		// while the ones queued during the append wait: expect both in
		// the next batch. (Counted before the answers went out: a caller
		// that is back already must not count twice, or every batch of
		// quick callers would wait out Linger for callers that do not exist.)
		target = min(len(batch)+queued, cap(batch))
		clear(batch)
		idle.Reset(l.svc.opts.IdleStop)
	}
}

// linger waits briefly for the callers of the previous batch to come back.
// Under load, they send their next command right after their reply, a
// moment after this lane started its next round; without waiting, they miss
// it and wait for a whole append and the one after, so the callers split
// into two halves that take turns, each waiting two appends. Waiting (at
// most Linger) until the batch holds everyone answered by the previous one
// plus everyone who queued meanwhile lets one append serve them all. A lane
// whose batches hold a single command never waits, so a lone caller sees
// no added latency.
func (l *lane) linger(batch *[]*pending, target int) {
	if target <= 1 || len(*batch) >= target || l.svc.opts.Linger <= 0 {
		return
	}
	t := time.NewTimer(l.svc.opts.Linger)
	defer t.Stop()
	*batch = gather.Until(*batch, l.in, min(target, cap(*batch)), t.C, nil)
}

// leave fails everything queued and retires the lane once no sender is
// between its check and its send.
func (l *lane) leave() {
	for {
		l.failQueued(ErrStockServiceClosed)
		if l.mu.TryLock() {
			l.retired = true
			l.mu.Unlock()
			l.failQueued(ErrStockServiceClosed)
			return
		}
		time.Sleep(100 * time.Microsecond) // a sender is queueing: let it finish
	}
}

func (l *lane) failQueued(err error) {
	for {
		select {
		case p := <-l.in:
			p.done(StockResult{CommandID: p.req.CommandID, Err: err})
		default:
			return
		}
	}
}

// process decides and appends one batch, retrying on conflicts with a
// fresh stock; every pending command gets exactly one result. It returns
// how many commands were queued once the batch's outcome was known, before
// any of its callers heard it.
func (l *lane) process(batch []*pending) (queued int) {
	live := batch[:0:0]
	for _, p := range batch {
		if p.ctx == nil || p.ctx.Err() == nil { // the caller gave up before we started: do nothing for it
			live = append(live, p)
		}
	}
	if len(live) < len(batch) {
		batch = live
	}
	results, err := l.decide(batch)
	queued = len(l.in)
	if err == nil {
		for i, p := range batch {
			p.done(results[i])
		}
		return queued
	}
	for _, p := range batch {
		p.done(StockResult{CommandID: p.req.CommandID, Err: fmt.Errorf("stock %s: %w", l.sku, err)})
	}
	return queued
}

// decide decides and appends the batch within the current writer term,
// retrying on conflicts with a fresh stock while the term lasts.
func (l *lane) decide(batch []*pending) ([]StockResult, error) {
	t := l.svc.term.Load()
	if t == nil || t.over() {
		return nil, ErrNotStockWriter
	}
	if l.gen != t.gen {
		// Another instance may have written while this one was not the
		// writer: the stock in memory is not to be trusted.
		l.stock, l.gen = nil, t.gen
	}
	policy := conflictRetry
	policy.Attempts = 8
	var results []StockResult
	err := retry.Do(t.ctx, policy, func(context.Context, int) error {
		ctx, cancel := t.attempt()
		var err error
		results, err = l.try(ctx, batch)
		cancel()
		if err == nil {
			return nil
		}
		l.stock = nil // reload: the store knows better than our memory
		switch {
		case t.over():
			// The lease may be someone else's now: deciding again on fresh
			// stock would append after the new writer settled the orders
			// it saw, leaving units held that nobody releases.
			return retry.Permanent(fenceErr(err))
		case !errors.Is(err, ErrConflict):
			return retry.Permanent(err)
		}
		return err
	})
	if err != nil && t.over() {
		err = fenceErr(err)
	}
	return results, err
}

// stockEventTypes are the StockResult.Events of commands that appended one
// event, shared by all results rather than allocated for each.
var stockEventTypes = map[string][]string{
	domain.EvtInventoryAdded:     {domain.EvtInventoryAdded},
	domain.EvtInventoryReserved:  {domain.EvtInventoryReserved},
	domain.EvtInventoryReleased:  {domain.EvtInventoryReleased},
	domain.EvtInventoryCommitted: {domain.EvtInventoryCommitted},
}

// try decides the batch against the stock and appends the events; on any
// error the in-memory stock may be ahead of the store and must be reloaded.
func (l *lane) try(ctx context.Context, batch []*pending) ([]StockResult, error) {
	if l.stock == nil {
		st, added, err := loadStock(ctx, l.svc.store, domain.NewStock(l.sku), nil)
		if err != nil {
			return nil, err
		}
		l.stock, l.added = st, added
	}
	expected := l.stock.Revision()
	now := l.svc.opts.Clock().UTC()
	results := slices.Grow(l.results[:0], len(batch))[:len(batch)]
	clear(results)
	l.results = results
	b := l.stock.NewBatch()
	for i, p := range batch {
		results[i].CommandID = p.req.CommandID
		if p.req.Command == nil {
			continue // a read: it gets the stock as of this batch
		}
		_, add := p.req.Command.(domain.AddStock)
		if add && l.added[p.req.CommandID] {
			continue // already applied under this command ID
		}
		typ, err := b.Decide(p.req.Command, domain.EventMeta{CommandID: p.req.CommandID, CorrelationID: p.req.CorrelationID,
			CausationID: p.req.CausationID, OccurredAt: now, TraceParent: p.req.TraceParent})
		var refused *domain.Error
		switch {
		case errors.As(err, &refused):
			results[i].Err = err
			continue
		case err != nil:
			return nil, err
		}
		if typ != "" {
			results[i].Events = stockEventTypes[typ]
		}
		if add {
			l.added[p.req.CommandID] = true
		}
	}
	decided := b.Events()
	events := make([]NewEvent, len(decided))
	for i, e := range decided {
		typ, data, md, err := domain.EncodeEvent(e)
		if err != nil {
			return nil, err
		}
		events[i] = NewEvent{ID: stockEventID(e), Type: typ, Data: data, Metadata: md}
	}
	var app Appended
	if len(events) > 0 {
		if err := beforeDeadline(ctx); err != nil {
			return nil, err
		}
		var err error
		if app, err = l.svc.store.AppendToStream(ctx, domain.StockStream(l.sku), expected, events); err != nil {
			return nil, err
		}
	}
	view := l.stock.View()
	for i := range results {
		results[i].Revision, results[i].Stock = view.Revision, view
		if len(results[i].Events) > 0 {
			results[i].Position = app.Position
		}
	}
	return results, nil
}
