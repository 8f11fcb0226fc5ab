package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// StockService handles stock commands with one writer per SKU: each SKU has
// a lane, a goroutine that owns the SKU's aggregate in memory, takes every
// command waiting for it, decides them in order against the current stock,
// and appends all their events in one durable append. A flash sale on one
// SKU thus becomes a few large appends instead of thousands of writers
// colliding on one stream revision; different SKUs proceed in parallel.
//
// Within one process the lane is the only writer. If another process
// writes the same SKU, the append's expected revision catches it: the lane
// reloads and decides the batch again.
type StockService struct {
	store EventStore
	log   *slog.Logger
	opts  StockOptions

	mu     sync.Mutex
	lanes  map[string]*lane
	closed bool
	wg     sync.WaitGroup
}

// StockOptions tune a StockService. The zero value is usable.
type StockOptions struct {
	Logger   *slog.Logger
	Clock    func() time.Time
	MaxBatch int           // commands decided per append; default 1024
	IdleStop time.Duration // a lane with nothing to do this long exits and frees its memory; default 1 minute
	// Linger bounds how long a busy lane waits to fill a batch (see
	// lane.linger); default 1ms, negative disables.
	Linger time.Duration
}

// StockRequest is one stock command.
type StockRequest struct {
	CommandID     string
	CorrelationID string
	CausationID   string
	Command       domain.StockCommand
}

// StockResult is a stock command's outcome.
type StockResult struct {
	CommandID string
	Events    []string // types of the events it appended; none if it was already done
	Revision  int64    // the SKU stream's revision after the command's batch
	Position  uint64   // $all position of the batch's last event (0 if nothing was appended)
	Stock     domain.StockView
	Err       error // *domain.Error for refusals (out_of_stock, invalid_command), else infrastructure
}

// NewStockService returns a service over store. Close stops its lanes.
func NewStockService(store EventStore, opts StockOptions) *StockService {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.IdleStop <= 0 {
		opts.IdleStop = time.Minute
	}
	if opts.Linger == 0 {
		opts.Linger = time.Millisecond
	}
	return &StockService{store: store, log: opts.Logger, opts: opts, lanes: map[string]*lane{}}
}

// ErrStockServiceClosed: the service is shutting down; retry elsewhere.
var ErrStockServiceClosed = errors.New("stock service closed")

// Execute runs one stock command through its SKU's lane.
func (s *StockService) Execute(ctx context.Context, req StockRequest) StockResult {
	if err := req.Command.Validate(); err != nil {
		return StockResult{CommandID: req.CommandID, Err: err}
	}
	if req.CommandID == "" {
		return StockResult{Err: &domain.Error{Code: domain.CodeInvalidCommand, Field: "command_id", Message: "is required"}}
	}
	return s.submit(ctx, &pending{ctx: ctx, req: req, done: make(chan StockResult, 1)}, req.Command.StockSKU())
}

// submit hands p to the SKU's lane and waits for its result.
func (s *StockService) submit(ctx context.Context, p *pending, sku string) StockResult {
	req := p.req
	for {
		l, err := s.lane(sku)
		if err != nil {
			return StockResult{CommandID: req.CommandID, Err: err}
		}
		select {
		case l.in <- p:
			select {
			case r := <-p.done:
				return r
			case <-ctx.Done():
				return StockResult{CommandID: req.CommandID, Err: fmt.Errorf("stock command %s: %w", req.CommandID, ctx.Err())}
			}
		case <-l.gone:
			// The lane exited while idle; the next call makes a new one.
		case <-ctx.Done():
			return StockResult{CommandID: req.CommandID, Err: ctx.Err()}
		}
	}
}

// Get returns a SKU's current stock. It goes through the SKU's lane, so
// it sees every decision acknowledged before it, and costs no read of the
// stream once the lane holds the stock in memory.
func (s *StockService) Get(ctx context.Context, sku string) (domain.StockView, error) {
	if err := (domain.AddStock{SKU: sku, Quantity: 1}).Validate(); err != nil {
		return domain.StockView{}, err
	}
	r := s.submit(ctx, &pending{ctx: ctx, req: StockRequest{}, done: make(chan StockResult, 1)}, sku)
	return r.Stock, r.Err
}

// Close stops every lane after the batch it is working on.
func (s *StockService) Close() {
	s.mu.Lock()
	s.closed = true
	for _, l := range s.lanes {
		close(l.stop)
	}
	s.lanes = map[string]*lane{}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *StockService) lane(sku string) (*lane, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrStockServiceClosed
	}
	if l := s.lanes[sku]; l != nil {
		return l, nil
	}
	l := &lane{svc: s, sku: sku, in: make(chan *pending, s.opts.MaxBatch), stop: make(chan struct{}), gone: make(chan struct{}),
		added: map[string]bool{}}
	s.lanes[sku] = l
	s.wg.Add(1)
	go l.run()
	return l, nil
}

// retire removes an idle lane unless commands arrived meanwhile.
func (s *StockService) retire(l *lane) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(l.in) > 0 {
		return false
	}
	if s.lanes[l.sku] == l {
		delete(s.lanes, l.sku)
	}
	close(l.gone)
	return true
}

type pending struct {
	ctx  context.Context
	req  StockRequest
	done chan StockResult
}

// lane is the single writer of one SKU.
type lane struct {
	svc   *StockService
	sku   string
	in    chan *pending
	stop  chan struct{}
	gone  chan struct{}
	stock *domain.Stock   // nil until loaded, and after a failed append
	added map[string]bool // command IDs of the AddStock commands folded, so a retried AddStock adds once
}

func (l *lane) run() {
	defer l.svc.wg.Done()
	idle := time.NewTimer(l.svc.opts.IdleStop)
	defer idle.Stop()
	batch := make([]*pending, 0, l.svc.opts.MaxBatch)
	target := 0 // how many commands a batch is expected to gather (see linger)
	for {
		select {
		case <-l.stop:
			l.failQueued(ErrStockServiceClosed)
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
	fill:
		for len(batch) < cap(batch) {
			select {
			case p := <-l.in:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		l.linger(&batch, target)
		// The target is a slowly decaying maximum of recent batch sizes:
		// it climbs to the number of callers at once, and forgets callers
		// that left within a few dozen batches.
		target = max(len(batch), target-(target+15)/16)
		l.process(batch)
		idle.Reset(l.svc.opts.IdleStop)
	}
}

// linger waits briefly for the callers of the previous batch to come back.
// Under load, they send their next command right after their reply, a
// moment after this lane started its next round; without waiting, most of
// them miss it and wait a whole append for the one after, so batches stay
// half full. Waiting (at most Linger) until the batch is as large as recent
// ones fills them. A lane whose batches hold a single command never waits,
// so a lone caller sees no added latency.
func (l *lane) linger(batch *[]*pending, target int) {
	if target <= 1 || len(*batch) >= target || l.svc.opts.Linger <= 0 {
		return
	}
	t := time.NewTimer(l.svc.opts.Linger)
	defer t.Stop()
	for len(*batch) < min(target, cap(*batch)) {
		select {
		case p := <-l.in:
			*batch = append(*batch, p)
		case <-t.C:
			return
		}
	}
}

func (l *lane) failQueued(err error) {
	for {
		select {
		case p := <-l.in:
			p.done <- StockResult{CommandID: p.req.CommandID, Err: err}
		default:
			return
		}
	}
}

// process decides and appends one batch, retrying on conflicts with a
// fresh stock; every pending command gets exactly one result.
func (l *lane) process(batch []*pending) {
	live := batch[:0:0]
	for _, p := range batch {
		if p.ctx.Err() == nil { // the caller gave up before we started: do nothing for it
			live = append(live, p)
		}
	}
	const maxAttempts = 8
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var results []StockResult
		results, err = l.try(ctx, live)
		cancel()
		if err == nil {
			for i, p := range live {
				p.done <- results[i]
			}
			return
		}
		l.stock = nil // reload: the store knows better than our memory
		if !errors.Is(err, ErrConflict) {
			break
		}
	}
	for _, p := range live {
		p.done <- StockResult{CommandID: p.req.CommandID, Err: fmt.Errorf("stock %s: %w", l.sku, err)}
	}
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
	results := make([]StockResult, len(batch))
	var events []NewEvent
	for i, p := range batch {
		results[i].CommandID = p.req.CommandID
		if p.req.Command == nil {
			continue // a read: it gets the stock as of this batch
		}
		if _, ok := p.req.Command.(domain.AddStock); ok && l.added[p.req.CommandID] {
			continue // already applied under this command ID
		}
		decided, err := l.stock.Decide(p.req.Command)
		if err != nil {
			results[i].Err = err
			continue
		}
		meta := domain.EventMeta{CommandID: p.req.CommandID, CorrelationID: p.req.CorrelationID, CausationID: p.req.CausationID, OccurredAt: now}
		for j, d := range decided {
			if err := l.stock.Apply(d); err != nil {
				return nil, fmt.Errorf("decided an event the stock refuses (a bug): %w", err)
			}
			typ, data, md, err := domain.EncodeEvent(domain.Event{Type: d.EventType(), Version: 1, Data: d, Meta: meta})
			if err != nil {
				return nil, err
			}
			events = append(events, NewEvent{ID: eventID(p.req.CommandID, j), Type: typ, Data: data, Metadata: md})
			results[i].Events = append(results[i].Events, typ)
		}
		if _, ok := p.req.Command.(domain.AddStock); ok {
			l.added[p.req.CommandID] = true
		}
	}
	var app Appended
	if len(events) > 0 {
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

// loadStock folds a SKU's stream into st, from st's revision on, and
// returns the command IDs of the AddStock events it saw.
func loadStock(ctx context.Context, store EventStore, st *domain.Stock, added map[string]bool) (*domain.Stock, map[string]bool, error) {
	if added == nil {
		added = map[string]bool{}
	}
	err := store.ReadStream(ctx, domain.StockStream(st.SKU()), st.Revision()+1, func(e StoredEvent) error {
		ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
		if err != nil {
			return fmt.Errorf("stock %s revision %d: %w", st.SKU(), e.Revision, err)
		}
		if err := st.Apply(ev.Data); err != nil {
			return fmt.Errorf("stock %s revision %d: %w", st.SKU(), e.Revision, err)
		}
		if ev.Type == domain.EvtInventoryAdded && ev.Meta.CommandID != "" {
			added[ev.Meta.CommandID] = true
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrStreamNotFound) {
		return nil, nil, err
	}
	return st, added, nil
}
