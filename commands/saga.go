package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/domain/fastjson"
)

// The order saga is the process manager between orders and stock. It reads
// the order streams' events from the event store's own subscription (so no
// event can be missed between the two sides) and issues commands:
//
//	OrderPlaced      → reserve every line (all or nothing; a partial success
//	                   is released) → MarkStockReserved, or MarkStockRejected
//	                   with out_of_stock (the order is cancelled)
//	StockReserved    → start the payment timer (ExpirePayment at the deadline)
//	PaymentSucceeded → stop the timer
//	OrderCancelled,
//	StockRejected    → release the order's stock, stop the timer
//	OrderRefunded    → release the order's stock (nothing when it shipped:
//	                   its reservation was committed)
//	OrderShipped     → commit the order's stock
//
// Every step is idempotent — reservations are per order, order commands
// carry IDs derived from the order and the step — so the saga processes
// events at least once: after a crash it resumes from its last durable
// checkpoint and repeats what it may have done, changing nothing twice.

// SagaSource feeds the saga: order-stream events after a $all position.
type SagaSource interface {
	SubscribeOrderEvents(ctx context.Context, after uint64) (SagaFeed, error)
}

// SagaFeed is a running subscription; Next blocks until an event, a
// checkpoint position (Event nil) or ctx's end.
type SagaFeed interface {
	Next(ctx context.Context) (SagaItem, error)
	Close() error
}

// SagaItem is an order event with its position, or a bare checkpoint.
type SagaItem struct {
	Event    *StoredEvent
	Stream   string
	Position uint64
}

// Checkpoints keep the saga's position durably.
type Checkpoints interface {
	Load(ctx context.Context) (uint64, error)
	Save(ctx context.Context, position uint64) error
}

// PaymentTimers schedule the ExpirePayment command of an order. Schedule
// replaces an earlier timer of the order; Cancel of no timer is no error.
type PaymentTimers interface {
	Schedule(ctx context.Context, cmd domain.ExpirePayment, commandID string) error
	Cancel(ctx context.Context, orderID string) error
}

// SagaOptions tune the saga.
type SagaOptions struct {
	Logger         *slog.Logger
	PaymentTimeout time.Duration // default 15 minutes
	Workers        int           // orders handled concurrently; default 64
	// ManualStock: stock is managed by another system, which sends
	// MarkStockReserved / MarkStockRejected itself; the saga then does not
	// reserve on OrderPlaced (timers, releases and commits still run, and
	// change nothing for SKUs Ordo does not stock).
	ManualStock bool
	// CheckpointEvery bounds how long progress stays unsaved; default 1s.
	// What is lost in a crash is repeated, harmlessly.
	CheckpointEvery time.Duration
	// Tracer: a span per order event handled, continuing the trace of the
	// command that decided it (the event's traceparent); default none.
	Tracer Tracer
}

// Saga is the order saga. Run it with Run.
type Saga struct {
	orders *Service
	stock  *StockService
	timers PaymentTimers
	src    SagaSource
	cps    Checkpoints
	opts   SagaOptions
	log    *slog.Logger

	mu     sync.Mutex
	status SagaStatus
}

// SagaStatus is how far the saga is, for operators.
type SagaStatus struct {
	Running bool `json:"running"`
	// Position is the $all position up to which every order event has been
	// handled; Saved is the part of it on disk (a restart resumes there).
	Position uint64    `json:"position"`
	Saved    uint64    `json:"checkpoint"`
	Seen     uint64    `json:"last_event_position"` // newest order event received
	InFlight int       `json:"in_flight"`           // events received, not yet handled
	Handled  int64     `json:"events_handled"`
	Retries  int64     `json:"step_retries"`
	Error    string    `json:"last_error,omitempty"`
	Updated  time.Time `json:"updated_at"`
}

// Status reports the saga's progress.
func (s *Saga) Status() SagaStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *Saga) note(f func(*SagaStatus)) {
	s.mu.Lock()
	f(&s.status)
	s.status.Updated = time.Now().UTC()
	s.mu.Unlock()
}

// NewSaga returns the saga over the order and stock services.
func NewSaga(orders *Service, stock *StockService, timers PaymentTimers, src SagaSource, cps Checkpoints, opts SagaOptions) *Saga {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PaymentTimeout <= 0 {
		opts.PaymentTimeout = 15 * time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = time.Second
	}
	return &Saga{orders: orders, stock: stock, timers: timers, src: src, cps: cps, opts: opts, log: opts.Logger}
}

// CheckpointAheadError: a checkpoint is beyond the event store's head.
// The store lost events or is not the one the checkpoint was kept for;
// resuming there would skip every new event until the head passed it.
type CheckpointAheadError struct {
	What       string // "saga", or the projection's name
	Checkpoint uint64
	Head       uint64
	Fix        string // what the operator can do
}

func (e *CheckpointAheadError) Error() string {
	return fmt.Sprintf("%s checkpoint %d is beyond the event store's head %d: the store lost events or belongs to another data directory; %s",
		e.What, e.Checkpoint, e.Head, e.Fix)
}

// CheckCheckpoint refuses to start from a checkpoint beyond head, the
// event store's last position, with a *CheckpointAheadError.
func (s *Saga) CheckCheckpoint(ctx context.Context, head uint64) error {
	from, err := s.cps.Load(ctx)
	if err != nil {
		return fmt.Errorf("saga checkpoint: %w", err)
	}
	if from > head {
		return &CheckpointAheadError{What: "saga", Checkpoint: from, Head: head,
			Fix: "use the event store this data directory belongs to, or, if its loss was accepted, delete the saga's checkpoint " +
				"(saga.checkpoint in the data directory) so the saga goes over the history again (every step is idempotent)"}
	}
	return nil
}

// Run processes events until ctx ends (returning nil after saving the
// checkpoint of everything finished) or the feed fails.
func (s *Saga) Run(ctx context.Context) error {
	from, err := s.cps.Load(ctx)
	if err != nil {
		return fmt.Errorf("saga checkpoint: %w", err)
	}
	feed, err := s.src.SubscribeOrderEvents(ctx, from)
	if err != nil {
		return fmt.Errorf("saga subscription: %w", err)
	}
	defer feed.Close()

	s.note(func(st *SagaStatus) {
		st.Running, st.Error, st.Saved, st.Position = true, "", from, max(st.Position, from)
	})
	defer s.note(func(st *SagaStatus) { st.Running = false })
	w := newWatermark(from)
	lanes := make([]chan sagaJob, s.opts.Workers)
	var wg sync.WaitGroup
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	for i := range lanes {
		lanes[i] = make(chan sagaJob, 64)
		wg.Add(1)
		go func(in chan sagaJob) {
			defer wg.Done()
			for j := range in {
				s.handle(workCtx, ctx, j)
				w.done(j.seq)
				s.note(func(st *SagaStatus) { st.Handled++; st.InFlight--; st.Position = max(st.Position, w.position()) })
			}
		}(lanes[i])
	}
	saved := from
	save := func(c context.Context) {
		if pos := w.position(); pos > saved {
			if err := s.cps.Save(c, pos); err != nil {
				s.log.Warn("saga: saving the checkpoint failed; will retry", "position", pos, "err", err)
				return
			}
			saved = pos
			s.note(func(st *SagaStatus) { st.Saved = pos })
		}
	}
	tick := time.NewTicker(s.opts.CheckpointEvery)
	defer tick.Stop()
	items := make(chan SagaItem)
	feedErr := make(chan error, 1)
	go func() {
		for {
			it, err := feed.Next(ctx)
			if err != nil {
				feedErr <- err
				return
			}
			select {
			case items <- it:
			case <-ctx.Done():
				feedErr <- ctx.Err()
				return
			}
		}
	}()
	var runErr error
loop:
	for {
		select {
		case it := <-items:
			if it.Event == nil {
				w.skip(it.Position)
				s.note(func(st *SagaStatus) { st.Position = max(st.Position, w.position()) })
				continue
			}
			orderID := it.Stream[len(StreamName("")):]
			seq := w.start(it.Position)
			s.note(func(st *SagaStatus) { st.InFlight++; st.Seen = it.Position })
			lanes[laneOf(orderID, len(lanes))] <- sagaJob{seq: seq, orderID: orderID, event: *it.Event}
		case <-tick.C:
			save(ctx)
		case err := <-feedErr:
			if ctx.Err() == nil {
				runErr = fmt.Errorf("saga subscription: %w", err)
				s.note(func(st *SagaStatus) { st.Error = runErr.Error() })
			}
			break loop
		}
	}
	// Let the steps under way finish (they are bounded by their own
	// retries), then save how far everything got.
	for _, l := range lanes {
		close(l)
	}
	wg.Wait()
	save(context.WithoutCancel(ctx))
	return runErr
}

func laneOf(orderID string, n int) int {
	var h uint32 = 2166136261
	for i := 0; i < len(orderID); i++ {
		h = (h ^ uint32(orderID[i])) * 16777619
	}
	return int(h % uint32(n))
}

type sagaJob struct {
	seq     uint64
	orderID string
	event   StoredEvent
}

// handle runs one step until it succeeds, retrying transient failures,
// or until the saga stops (stop is the Run context; work outlives it
// only to finish a step cleanly).
func (s *Saga) handle(ctx, stop context.Context, j sagaJob) {
	if !domain.IsCanonicalOrderID(j.orderID) {
		// A stream named with another spelling of an order ID (written before
		// order IDs were made canonical): no command can address it, and
		// every step would be refused as invalid forever.
		s.log.Error("saga: an order stream's ID is not a lower-case UUID; skipped (ordo verify reports it)", "order", j.orderID, "revision", j.event.Revision)
		return
	}
	ev, err := fastjson.DecodeEvent(j.event.Type, j.event.Data, j.event.Metadata)
	if err != nil {
		s.log.Error("saga: an order event cannot be decoded; skipped", "order", j.orderID, "revision", j.event.Revision, "err", err)
		return
	}
	ctx, _, end := tracerOr(s.opts.Tracer).Start(ctx, "saga "+ev.Type, ev.Meta.TraceParent)
	for attempt := 0; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.step(sctx, j.orderID, ev)
		cancel()
		if err == nil {
			end(nil)
			return
		}
		if stop.Err() != nil {
			end(err)
			return // not checkpointed: repeated after the restart
		}
		if !errors.Is(err, ErrUnavailable) {
			// An unreachable store is logged by its adapter, once per
			// interval, not here once per step and attempt.
			s.log.Warn("saga: step failed; retrying", "order", j.orderID, "event", ev.Type, "attempt", attempt, "err", err)
		}
		s.note(func(st *SagaStatus) {
			st.Retries++
			st.Error = fmt.Sprintf("order %s, %s: %v", j.orderID, ev.Type, err)
		})
		select {
		case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, 2*time.Second)):
		case <-stop.Done():
			end(err)
			return
		}
	}
}

// step is the saga's reaction to one order event.
func (s *Saga) step(ctx context.Context, orderID string, ev domain.Event) error {
	switch d := ev.Data.(type) {
	case domain.OrderPlaced:
		if s.opts.ManualStock {
			return nil
		}
		return s.reserve(ctx, orderID, d.Lines, ev.Meta)
	case domain.StockReserved:
		deadline := ev.Meta.OccurredAt.Add(s.opts.PaymentTimeout)
		return s.timers.Schedule(ctx, domain.ExpirePayment{Order: orderID, Deadline: deadline}, stepID(orderID, "expire-payment"))
	case domain.PaymentSucceeded:
		if !d.Late && !d.Extra {
			s.cancelTimer(ctx, orderID)
		}
	case domain.OrderCancelled, domain.StockRejected:
		if _, rejected := d.(domain.StockRejected); !rejected {
			s.cancelTimer(ctx, orderID) // a rejected order never had a timer
		}
		return s.settle(ctx, orderID, ev.Meta, func(sku string) domain.StockCommand { return domain.ReleaseStock{SKU: sku, OrderID: orderID} })
	case domain.OrderRefunded:
		// Fully refunded while paid and not shipped, the order is over: its
		// reservation must not outlive it. After a shipment its reservation
		// was committed, and releasing finds nothing.
		return s.settle(ctx, orderID, ev.Meta, func(sku string) domain.StockCommand { return domain.ReleaseStock{SKU: sku, OrderID: orderID} })
	case domain.OrderShipped:
		return s.settle(ctx, orderID, ev.Meta, func(sku string) domain.StockCommand { return domain.CommitStock{SKU: sku, OrderID: orderID} })
	}
	return nil
}

func (s *Saga) cancelTimer(ctx context.Context, orderID string) {
	// Best effort: a timer that fires anyway meets a paid or cancelled
	// order, which the lifecycle refuses to expire.
	if err := s.timers.Cancel(ctx, orderID); err != nil {
		s.log.Warn("saga: cancelling the payment timer failed (harmless)", "order", orderID, "err", err)
	}
}

// stepID is the deterministic command ID of a saga step for an order, so a
// repeated step is recognised as a duplicate.
func stepID(orderID, step string) string {
	return uuid.NewSHA1(sagaNamespace, []byte(orderID+"/"+step)).String()
}

var sagaNamespace = uuid.MustParse("5b1d6a57-7a4b-4c8e-9d3e-0b2c7f6e4a10")

// SagaStockReservedID is the command ID of the saga's MarkStockReserved for
// an order: a StockReserved that carries it was recorded by the saga after
// it reserved the order's stock (ordo verify holds such orders to their SKU
// streams).
func SagaStockReservedID(orderID string) string { return stepID(orderID, sagaStockReserved) }

// sagaStockReserved is the step of the saga's MarkStockReserved.
const sagaStockReserved = "stock-reserved"

// reserve reserves every line, all or nothing, and records the outcome on
// the order.
func (s *Saga) reserve(ctx context.Context, orderID string, lines []domain.Line, meta domain.EventMeta) error {
	qty := map[string]int64{}
	for _, l := range lines {
		qty[l.SKU] += l.Quantity
	}
	skus := make([]string, 0, len(qty))
	for sku := range qty {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	results := make([]StockResult, len(skus))
	var wg sync.WaitGroup
	for i, sku := range skus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.stock.Execute(ctx, StockRequest{CommandID: stepID(orderID, "reserve/"+sku), CorrelationID: meta.CorrelationID,
				CausationID: meta.CommandID, Command: domain.ReserveStock{SKU: sku, OrderID: orderID, Quantity: qty[sku]}})
		}()
	}
	wg.Wait()
	var short []string
	for i, r := range results {
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, domain.ErrOutOfStock), errors.Is(r.Err, domain.ErrIllegalTransition), errors.Is(r.Err, domain.ErrReservationConflict):
			// Out of stock, or the reservation was already released by an
			// earlier run of this step that rejected the order, or the order
			// holds another quantity than its lines (reserved by a client
			// before stock reserves were the saga's alone): the order cannot
			// be backed as it is, and releasing gives back what it holds.
			short = append(short, skus[i])
		default:
			return r.Err
		}
	}
	cmdMeta := func(step string) (string, string, string) {
		return stepID(orderID, step), meta.CorrelationID, meta.CommandID
	}
	if len(short) == 0 {
		id, corr, cause := cmdMeta(sagaStockReserved)
		res := s.orders.Execute(ctx, commandRequest(domain.MarkStockReserved{Order: orderID}, id, corr, cause))
		switch {
		case res.Err == nil:
			return nil
		case errors.Is(res.Err, domain.ErrIllegalTransition):
			// Someone else decided first: the order was cancelled while we
			// reserved (give the stock back), or marked reserved already.
			// The refusal was decided on state just read from the stream,
			// which it reports; a cancellation after it releases the stock
			// through its own event.
			state := res.Current
			if state == "" {
				view, err := s.orders.GetOrder(ctx, orderID)
				if err != nil {
					return err
				}
				state = view.State
			}
			if state == domain.StateCancelled {
				return s.releaseAll(ctx, orderID, skus, meta)
			}
			return nil
		default:
			return res.Err
		}
	}
	if err := s.releaseAll(ctx, orderID, skus, meta); err != nil {
		return err
	}
	id, corr, cause := cmdMeta("stock-rejected")
	res := s.orders.Execute(ctx, commandRequest(domain.MarkStockRejected{Order: orderID, Reason: string(domain.CodeOutOfStock), SKUs: short}, id, corr, cause))
	if res.Err != nil && !errors.Is(res.Err, domain.ErrIllegalTransition) {
		return res.Err
	}
	return nil
}

func (s *Saga) releaseAll(ctx context.Context, orderID string, skus []string, meta domain.EventMeta) error {
	for _, sku := range skus {
		r := s.stock.Execute(ctx, StockRequest{CommandID: stepID(orderID, "release/"+sku), CorrelationID: meta.CorrelationID,
			CausationID: meta.CommandID, Command: domain.ReleaseStock{SKU: sku, OrderID: orderID}})
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// settle releases or commits the stock of every line of the order. The
// lines never change once the order is placed, so a cached order serves
// without reading its stream again.
func (s *Saga) settle(ctx context.Context, orderID string, meta domain.EventMeta, cmd func(sku string) domain.StockCommand) error {
	view, err := s.orders.orderView(ctx, orderID, false)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, l := range view.Lines {
		if seen[l.SKU] {
			continue
		}
		seen[l.SKU] = true
		c := cmd(l.SKU)
		r := s.stock.Execute(ctx, StockRequest{CommandID: stepID(orderID, fmt.Sprintf("%T/%s", c, l.SKU)), CorrelationID: meta.CorrelationID,
			CausationID: meta.CommandID, Command: c})
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// commandRequest wraps a domain command for Service.Execute.
func commandRequest(cmd domain.Command, commandID, correlationID, causationID string) Request {
	body, err := json.Marshal(cmd)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", cmd, err)) // plain structs always encode
	}
	return Request{CommandID: commandID, CommandType: cmd.CommandType(), OrderID: cmd.OrderID(),
		CorrelationID: correlationID, CausationID: causationID, Body: body}
}

// watermark tracks which events are done, so the checkpoint never passes an
// event still being handled while later ones (of other orders) finish first.
type watermark struct {
	mu      sync.Mutex
	base    uint64 // position everything up to which is done
	next    uint64 // sequence of the next started event
	first   uint64 // sequence of the oldest event not yet popped
	pending map[uint64]*mark
}

type mark struct {
	pos  uint64
	done bool
}

func newWatermark(from uint64) *watermark {
	return &watermark{base: from, pending: map[uint64]*mark{}}
}

// start registers an event at pos and returns its sequence number.
func (w *watermark) start(pos uint64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.next
	w.next++
	w.pending[seq] = &mark{pos: pos}
	return seq
}

// skip records a checkpoint position with nothing to do: it is done as
// soon as everything before it is.
func (w *watermark) skip(pos uint64) {
	seq := w.start(pos)
	w.done(seq)
}

// done marks an event finished and advances the base over the finished prefix.
func (w *watermark) done(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[seq].done = true
	for {
		m, ok := w.pending[w.first]
		if !ok || !m.done {
			return
		}
		w.base = max(w.base, m.pos)
		delete(w.pending, w.first)
		w.first++
	}
}

func (w *watermark) position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.base
}
