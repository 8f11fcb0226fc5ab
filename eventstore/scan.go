package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// scanConfig is the shape of a parallel $all scan. A range is about
// window*interval records of the log (a checkpoint of the boundary
// subscription every interval search windows); readers ranges are read at
// once, and at most readers+lookahead ranges hold events the caller has not
// taken yet, each at most queue batches of batch events, so memory stays
// bounded however far the caller falls behind. A range is read in $all
// reads of up to page events.
type scanConfig struct {
	window, interval int
	readers          int
	lookahead        int
	batch, queue     int
	page             uint64
	noBounds         bool // read everything as one range (tests)
	// spaced cuts the log every window*interval positions instead of
	// asking the server where records start: for the embedded server,
	// which reads from any position.
	spaced bool
}

func defaultScanConfig() scanConfig {
	const window, interval = 32, 128 // 4,096 records a range
	return scanConfig{
		window: window, interval: interval,
		// The client decodes protobuf in the goroutine that receives, so
		// one read per CPU keeps every core decoding; one more covers the
		// time a read waits on the network.
		readers:   max(runtime.GOMAXPROCS(0), 1) + 1,
		lookahead: 2,
		batch:     256, queue: 8,
		page: window*interval + 1, // a range and the event that ends it
	}
}

// ScanAll calls fn for every user event of $all from position from
// (inclusive) on, in $all order, with ReadAll's semantics: system events are
// skipped, filter applies, events appended during the scan may or may not
// be delivered, and fn's error ends the scan and is returned. Errors:
// ErrUnavailable or fn's error.
//
// Unlike ReadAll it reads several ranges of the log at once, on as many
// concurrent reads, so the client's decoding runs on every core: one read
// cannot keep up with a caller that does little per event. The range
// boundaries are real event positions, taken from the checkpoints of a
// filtered $all subscription that matches nothing, because an EventStoreDB
// server refuses reads from a position inside a record. If that
// subscription fails, the rest of the log is read as one range. The
// embedded server reads from any position, so there the log is cut at
// evenly spaced positions instead.
func (s *Store) ScanAll(ctx context.Context, from uint64, filter Filter, fn func(RecordedEvent) error) error {
	cfg := defaultScanConfig()
	// The embedded server reads from any position, and asking it where
	// records start costs it a second pass over the log (a tenth of the
	// CPU of a scan through the official client on 2 cores).
	cfg.spaced = s.embedded != nil
	return s.scanAll(ctx, from, filter, fn, cfg)
}

func (s *Store) scanAll(ctx context.Context, from uint64, filter Filter, fn func(RecordedEvent) error, cfg scanConfig) error {
	match, err := filter.matcher()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	head, err := s.Head(ctx)
	if err != nil {
		return err
	}
	start := esdb.Position{Commit: from, Prepare: from}
	bounds := make(chan esdb.Position, 64)
	inFlight := cfg.readers + cfg.lookahead
	tokens := make(chan struct{}, inFlight)
	work := make(chan *scanRange, inFlight)
	order := make(chan *scanRange, inFlight)
	wg.Add(2 + cfg.readers)
	go func() {
		defer wg.Done()
		if cfg.noBounds {
			close(bounds)
			return
		}
		if cfg.spaced {
			spacedBounds(ctx, start, head, uint64(cfg.window*cfg.interval), bounds)
			return
		}
		s.scanBounds(ctx, start, head, cfg, bounds)
	}()
	go func() { defer wg.Done(); planRanges(ctx, start, bounds, tokens, work, order, cfg.queue) }()
	for range cfg.readers {
		go func() {
			defer wg.Done()
			for r := range work {
				r.err = s.readRange(ctx, r, match, cfg)
				close(r.out)
			}
		}()
	}
	for r := range order {
		for batch := range r.out {
			for _, e := range batch {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		if r.err != nil {
			return r.err
		}
		<-tokens
	}
	// order closes early only when ctx ended before the last range.
	return ctx.Err()
}

// scanRange is the events with positions in [from, to) (to the end of the
// log when to is nil), delivered in batches on out; err is set before out
// is closed.
type scanRange struct {
	from esdb.Position
	to   *esdb.Position
	out  chan []RecordedEvent
	err  error
}

// planRanges cuts the log at each boundary into ranges, hands them to the
// readers and, in the same order, to the caller. A range starts only with a
// token, which the caller gives back when it has taken all of its events.
func planRanges(ctx context.Context, start esdb.Position, bounds <-chan esdb.Position, tokens chan struct{}, work, order chan<- *scanRange, queue int) {
	defer close(order)
	defer close(work)
	prev := start
	next := func(to *esdb.Position) bool {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		r := &scanRange{from: prev, to: to, out: make(chan []RecordedEvent, queue)}
		work <- r  // never blocks: as many slots as tokens
		order <- r // nor this
		return true
	}
	for b := range bounds {
		if !positionLess(prev, b) {
			continue
		}
		if !next(&b) {
			return
		}
		prev = b
	}
	next(nil)
}

// spacedBounds sends positions every step after start up to head.
func spacedBounds(ctx context.Context, start esdb.Position, head, step uint64, bounds chan<- esdb.Position) {
	defer close(bounds)
	for b := start.Commit + step; b <= head; b += step {
		select {
		case bounds <- esdb.Position{Commit: b, Prepare: b}:
		case <-ctx.Done():
			return
		}
	}
}

// scanBounds sends positions, in increasing order, that cut the log after
// start into ranges of about window*interval records: the checkpoints of a
// filtered subscription whose filter matches nothing. It closes bounds when
// the subscription reaches head or catches up, or fails, or ctx ends.
func (s *Store) scanBounds(ctx context.Context, start esdb.Position, head uint64, cfg scanConfig, bounds chan<- esdb.Position) {
	defer close(bounds)
	opts := esdb.SubscribeToAllOptions{
		From: start,
		// No event type starts with "$ordo-": user types never start with
		// "$" and the server's own are known. Any that did would only cost
		// their delivery here; they are not used.
		Filter:             &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: []string{"$ordo-scan-boundary-"}},
		MaxSearchWindow:    cfg.window,
		CheckpointInterval: cfg.interval,
	}
	if start.Commit == 0 {
		opts.From = esdb.Start{}
	}
	sub, err := s.client.SubscribeToAll(ctx, opts)
	if err != nil {
		return // the rest of the log is read as one range
	}
	defer sub.Close()
	stop := context.AfterFunc(ctx, func() { sub.Close() })
	defer stop()
	for {
		ev := sub.Recv()
		switch {
		case ev.CheckPointReached != nil:
			select {
			case bounds <- *ev.CheckPointReached:
			case <-ctx.Done():
				return
			}
			// Beyond the head the last range reads on to the end anyway,
			// and a server without caught-up messages would keep the
			// subscription live.
			if ev.CheckPointReached.Commit >= head {
				return
			}
		case ev.CaughtUp != nil, ev.SubscriptionDropped != nil:
			return
		}
	}
}

// readRange reads the events of r into r.out in batches.
func (s *Store) readRange(ctx context.Context, r *scanRange, match func(RecordedEvent) bool, cfg scanConfig) error {
	batch := make([]RecordedEvent, 0, cfg.batch)
	err := s.readAllPages(ctx, r.from, r.to, cfg.page, func(ev *esdb.RecordedEvent) error {
		if strings.HasPrefix(ev.EventType, "$") {
			return nil
		}
		e := recorded(ev)
		if !match(e) {
			return nil
		}
		if batch = append(batch, e); len(batch) == cfg.batch {
			if !send(ctx, r.out, batch) {
				return ctx.Err()
			}
			batch = make([]RecordedEvent, 0, cfg.batch)
		}
		return nil
	})
	if err == nil && len(batch) > 0 && !send(ctx, r.out, batch) {
		err = ctx.Err()
	}
	return err
}

// readAllPages calls fn for every record of $all with a position in
// [from, to) (to the end of the log when to is nil), system records
// included, in $all reads of up to page records each (a server may limit a
// read's count). A read after the first starts at the last record read,
// which an EventStoreDB server accepts as a position (a position inside a
// record it refuses), and skips it.
func (s *Store) readAllPages(ctx context.Context, from esdb.Position, to *esdb.Position, page uint64, fn func(*esdb.RecordedEvent) error) error {
	pos, skip := from, false
	for {
		rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{From: pos, Direction: esdb.Forwards}, page)
		if err != nil {
			return fmt.Errorf("read $all from %d: %w", pos.Commit, translate(err))
		}
		n, done := uint64(0), false
		for !done {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return fmt.Errorf("read $all from %d: %w", pos.Commit, translate(err))
			}
			n++
			p := ev.Event.Position
			switch {
			case skip && !positionLess(pos, p):
				continue // the record this read starts at, read by the one before
			case to != nil && !positionLess(p, *to):
				done = true // the first record of the next range
				continue
			}
			pos, skip = p, true
			if err := fn(ev.Event); err != nil {
				rs.Close()
				return err
			}
		}
		rs.Close()
		if done || n < page {
			return nil
		}
	}
}

func send(ctx context.Context, out chan<- []RecordedEvent, batch []RecordedEvent) bool {
	select {
	case out <- batch:
		return true
	case <-ctx.Done():
		return false
	}
}

// positionLess orders $all positions by commit, then prepare.
func positionLess(a, b esdb.Position) bool {
	return a.Commit < b.Commit || a.Commit == b.Commit && a.Prepare < b.Prepare
}
