package eventstore

import (
	"context"
	"runtime"
	"sync"
)

// scanConfig is the shape of a parallel $all scan. A range is about
// window*interval records of the log (a checkpoint of the boundary
// subscription every interval search windows); readers ranges are read at
// once, and at most readers+lookahead ranges hold events the caller has not
// taken yet, each at most queue batches of batch events, so memory stays
// bounded however far the caller falls behind. A range is read in reads of
// up to page records each.
type scanConfig struct {
	window, interval int
	readers          int
	lookahead        int
	batch, queue     int
	page             uint64
	noBounds         bool // read everything as one range (tests)
	// spaced cuts the log every window*interval positions instead of
	// asking the backend where records start (tests of the gRPC path).
	spaced bool
}

func defaultScanConfig() scanConfig {
	const window, interval = 32, 128 // 4,096 records a range
	return scanConfig{
		window: window, interval: interval,
		// The client decodes protobuf, and the embedded storage its
		// records, in the goroutine that reads, so one read per CPU keeps
		// every core decoding; one more covers the time a read waits.
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
// concurrent reads, so decoding runs on every core: one read cannot keep up
// with a caller that does little per event. Through the gRPC client the
// range boundaries are real event positions, taken from the checkpoints of
// a filtered $all subscription that matches nothing, because an
// EventStoreDB server refuses reads from a position inside a record (if
// that subscription fails, the rest of the log is read as one range). The
// embedded store reads from any position, so in-process the log is cut at
// evenly spaced positions instead.
func (s *Store) ScanAll(ctx context.Context, from uint64, filter Filter, fn func(RecordedEvent) error) error {
	return s.scanAll(ctx, from, filter, fn, defaultScanConfig())
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
	start := from
	bounds := make(chan uint64, 64)
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
		s.b.scanBounds(ctx, start, head, cfg, bounds)
	}()
	go func() { defer wg.Done(); planRanges(ctx, start, bounds, tokens, work, order, cfg.queue) }()
	for range cfg.readers {
		go func() {
			defer wg.Done()
			for r := range work {
				r.err = s.readRange(ctx, r, match, cfg.batch, cfg.page)
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
// log when to is 0), delivered in batches on out; err is set before out is
// closed.
type scanRange struct {
	from, to uint64
	out      chan []RecordedEvent
	err      error
}

// planRanges cuts the log at each boundary into ranges, hands them to the
// readers and, in the same order, to the caller. A range starts only with a
// token, which the caller gives back when it has taken all of its events.
func planRanges(ctx context.Context, start uint64, bounds <-chan uint64, tokens chan struct{}, work, order chan<- *scanRange, queue int) {
	defer close(order)
	defer close(work)
	prev := start
	next := func(to uint64) bool {
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
		if b <= prev {
			continue
		}
		if !next(b) {
			return
		}
		prev = b
	}
	next(0)
}

// spacedBounds sends positions every step after start up to head.
func spacedBounds(ctx context.Context, start, head, step uint64, bounds chan<- uint64) {
	defer close(bounds)
	for b := start + step; b <= head; b += step {
		select {
		case bounds <- b:
		case <-ctx.Done():
			return
		}
	}
}

// readRange reads the user events of r that match into r.out in batches.
func (s *Store) readRange(ctx context.Context, r *scanRange, match func(stream, eventType string) bool, size int, page uint64) error {
	batch := make([]RecordedEvent, 0, size)
	err := s.b.readAll(ctx, r.from, r.to, page, userEvents(match, func(e RecordedEvent) error {
		if batch = append(batch, e); len(batch) == size {
			if !send(ctx, r.out, batch) {
				return ctx.Err()
			}
			batch = make([]RecordedEvent, 0, size)
		}
		return nil
	}))
	if err == nil && len(batch) > 0 && !send(ctx, r.out, batch) {
		err = ctx.Err()
	}
	return err
}

func send(ctx context.Context, out chan<- []RecordedEvent, batch []RecordedEvent) bool {
	select {
	case out <- batch:
		return true
	case <-ctx.Done():
		return false
	}
}
