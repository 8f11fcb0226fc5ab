package commands

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
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
	Tracer Tracer // a span per command run through Execute; default none
}

// StockRequest is one stock command.
type StockRequest struct {
	CommandID     string
	CorrelationID string
	CausationID   string
	Command       domain.StockCommand
	// TraceParent: see Request.TraceParent.
	TraceParent string
}

// StockResult is a stock command's outcome.
type StockResult struct {
	CommandID string
	Events    []string // types of the events it appended; none if it was already done. Shared between results: do not modify

	Revision int64  // the SKU stream's revision after the command's batch
	Position uint64 // $all position of the batch's last event (0 if nothing was appended)
	Stock    domain.StockView
	Err      error // *domain.Error for refusals (out_of_stock, invalid_command), else infrastructure
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

// Execute runs one stock command through its SKU's lane and waits for its
// result. If ctx ends first, Execute returns its error; a command already
// taken into a batch is still carried out.
func (s *StockService) Execute(ctx context.Context, req StockRequest) (res StockResult) {
	ctx, tp, end := tracerOr(s.opts.Tracer).Start(ctx, stockSpanName(req.Command), req.TraceParent)
	defer func() { end(res.Err) }()
	req.TraceParent = tp
	done := make(chan StockResult, 1)
	if err := s.enqueue(&pending{ctx: ctx, req: req, done: func(r StockResult) { done <- r }}); err != nil {
		return StockResult{CommandID: req.CommandID, Err: err}
	}
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		return StockResult{CommandID: req.CommandID, Err: fmt.Errorf("stock command %s: %w", req.CommandID, ctx.Err())}
	}
}

// stockSpanName names a stock command's span after its type.
func stockSpanName(c domain.StockCommand) string {
	switch c.(type) {
	case domain.AddStock:
		return "stock AddStock"
	case domain.ReserveStock:
		return "stock ReserveStock"
	case domain.ReleaseStock:
		return "stock ReleaseStock"
	case domain.CommitStock:
		return "stock CommitStock"
	}
	return "stock read"
}

// Submit hands one stock command to its SKU's lane and returns at once;
// done receives its result exactly once, possibly before Submit returns
// (a refused command, a closed service). Once the command was decided,
// done runs on the lane's goroutine after the batch is durable, in the
// batch's order: it must be quick and must not block (encode and send a
// reply, not wait for anything). A flash sale's request handler thus needs
// no goroutine, context or channel per request.
func (s *StockService) Submit(req StockRequest, done func(StockResult)) {
	if err := s.enqueue(&pending{req: req, done: done}); err != nil {
		done(StockResult{CommandID: req.CommandID, Err: err})
	}
}

// Get returns a SKU's current stock. It goes through the SKU's lane, so
// it sees every decision acknowledged before it, and costs no read of the
// stream once the lane holds the stock in memory.
func (s *StockService) Get(ctx context.Context, sku string) (domain.StockView, error) {
	if err := (domain.AddStock{SKU: sku, Quantity: 1}).Validate(); err != nil {
		return domain.StockView{}, err
	}
	done := make(chan StockResult, 1)
	if err := s.enqueueOn(sku, &pending{ctx: ctx, done: func(r StockResult) { done <- r }}); err != nil {
		return domain.StockView{}, err
	}
	select {
	case r := <-done:
		return r.Stock, r.Err
	case <-ctx.Done():
		return domain.StockView{}, ctx.Err()
	}
}

// enqueue validates a command and queues it on its SKU's lane.
func (s *StockService) enqueue(p *pending) error {
	req := p.req
	if err := req.Command.Validate(); err != nil {
		return err
	}
	if req.CommandID == "" {
		return &domain.Error{Code: domain.CodeInvalidCommand, Field: "command_id", Message: "is required"}
	}
	return s.enqueueOn(req.Command.StockSKU(), p)
}

// enqueueOn queues p on the SKU's lane. When the lane's queue is full, a
// goroutine waits for room instead of the caller: Submit's caller may be
// the one goroutine that reads every SKU's requests, and one SKU's rush
// must not hold up the others.
func (s *StockService) enqueueOn(sku string, p *pending) error {
	for {
		l, err := s.lane(sku)
		if err != nil {
			return err
		}
		// The read lock keeps the lane from exiting while p goes in: a lane
		// exits only after it marked itself retired under the write lock.
		l.mu.RLock()
		if l.retired {
			l.mu.RUnlock()
			continue // it has left the map too: the next call makes a new lane
		}
		select {
		case l.in <- p:
			l.mu.RUnlock()
		default:
			go func() {
				defer l.mu.RUnlock()
				l.in <- p
			}()
		}
		return nil
	}
}

// Close stops every lane after the batch it is working on; commands still
// queued get ErrStockServiceClosed.
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
	l := &lane{svc: s, sku: sku, in: make(chan *pending, s.opts.MaxBatch), stop: make(chan struct{}), added: map[string]bool{}}
	s.lanes[sku] = l
	s.wg.Add(1)
	go l.run()
	return l, nil
}

// retire removes an idle lane unless commands are arriving.
func (s *StockService) retire(l *lane) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !l.mu.TryLock() {
		return false // a command is on its way in
	}
	defer l.mu.Unlock()
	if len(l.in) > 0 {
		return false
	}
	l.retired = true
	if s.lanes[l.sku] == l {
		delete(s.lanes, l.sku)
	}
	return true
}

// stockEventID is an event's ID: derived from its command, as for order
// events, or for several reservations in one event from all their
// commands, so the same decisions appended again get the same ID.
func stockEventID(e domain.Event) [16]byte {
	r, ok := e.Data.(domain.InventoryReserved)
	if !ok || len(r.Orders) == 0 {
		return eventID(e.Meta.CommandID, 0)
	}
	var name []byte
	for _, o := range r.Orders {
		name = binary.AppendUvarint(name, uint64(len(o.CommandID)))
		name = append(name, o.CommandID...)
	}
	return uuid.NewSHA1(stockReservedNamespace, name)
}

// stockReservedNamespace is the UUID name space of stockEventID's
// several-order reservations.
var stockReservedNamespace = uuid.MustParse("083f92f2-8fb1-4468-b843-a3e01ed70b86")

// loadStock folds a SKU's stream into st, from st's revision on, and
// returns the command IDs of the AddStock events it saw.
func loadStock(ctx context.Context, store EventStore, st *domain.Stock, added map[string]bool) (*domain.Stock, map[string]bool, error) {
	if added == nil {
		added = map[string]bool{}
	}
	err := store.ReadStream(ctx, domain.StockStream(st.SKU()), st.Revision()+1, func(e StoredEvent) error {
		ev, err := jsonwire.DecodeEvent(e.Type, e.Data, e.Metadata)
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
