package commands

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
	"github.com/ordo-dev/ordo/retry"
)

// The order saga is the process manager between orders and stock. It reads
// the order streams' events from the event store's own subscription (so no
// event can be missed between the two sides) and issues commands:
//
//	OrderPlaced      → reserve every line (all or nothing; a partial success
//	                   is released) → MarkStockReserved, or MarkStockRejected
//	                   with out_of_stock (the order is cancelled)
//	StockReserved    → start the payment timer (ExpirePayment at the
//	                   deadline; timers.go)
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

// Checkpoints keep the saga's position durably. Where several instances
// take turns running the saga, Load claims the checkpoint for the caller
// and Save fails with ErrCheckpointFenced once another instance loaded it.
type Checkpoints interface {
	Load(ctx context.Context) (uint64, error)
	Save(ctx context.Context, position uint64) error
}

// ErrCheckpointFenced: the saga's checkpoint was claimed by another
// instance that runs the saga now; this one stops.
var ErrCheckpointFenced = errors.New("another instance runs the saga now: its checkpoint was claimed")

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
	// TimerCheckpoints keep how far back the payment timers still pending
	// were started (timers.go), so a restart rebuilds them; nil: a restart
	// rebuilds only the timers of events after the saga's checkpoint.
	TimerCheckpoints Checkpoints
	// Clock tells the payment timers the time; default time.Now.
	Clock func() time.Time
}

// Saga is the order saga. Run it with Run.
type Saga struct {
	orders   *Service
	stock    *StockService
	timeouts PaymentTimeouts
	src      SagaSource
	cps      Checkpoints
	opts     SagaOptions
	log      *slog.Logger

	mu     sync.Mutex
	status SagaStatus
	timers *timerSchedule // this run's; replaced when Run starts again
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

// PendingTimers is the number of payment timers that have neither fired
// nor been stopped (0 while the saga does not run here).
func (s *Saga) PendingTimers() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	ts := s.timers
	s.mu.Unlock()
	return ts.pending()
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
// timeouts sends the ExpirePayment of an order whose payment timer is due
// (nil: timers never fire).
func NewSaga(orders *Service, stock *StockService, timeouts PaymentTimeouts, src SagaSource, cps Checkpoints, opts SagaOptions) *Saga {
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
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Saga{orders: orders, stock: stock, timeouts: timeouts, src: src, cps: cps, opts: opts, log: opts.Logger,
		timers: newTimerSchedule()}
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
	// The timers of this run are rebuilt from the events between the
	// timers' checkpoint and the saga's (timers only), then kept by the
	// events after it.
	replayFrom, err := s.timersFrom(ctx, from)
	if err != nil {
		return err
	}
	timers := newTimerSchedule()
	s.mu.Lock()
	s.timers = timers
	s.mu.Unlock()
	defer func() {
		// Stopped, the saga keeps no timers here: the next run (here or
		// on another instance) rebuilds them.
		s.mu.Lock()
		s.timers = newTimerSchedule()
		s.mu.Unlock()
	}()
	feed, err := s.src.SubscribeOrderEvents(ctx, replayFrom)
	if err != nil {
		return fmt.Errorf("saga subscription: %w", err)
	}
	defer feed.Close()
	if s.timeouts != nil {
		fireCtx, stopFiring := context.WithCancel(ctx)
		firing := make(chan struct{})
		go func() {
			defer close(firing)
			timers.run(fireCtx, s.opts.Clock, s.fire, s.log)
		}()
		defer func() { stopFiring(); <-firing }()
	}

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
				s.handle(workCtx, ctx, timers, j)
				w.done(j.seq)
				s.note(func(st *SagaStatus) { st.Handled++; st.InFlight--; st.Position = max(st.Position, w.position()) })
			}
		}(lanes[i])
	}
	saved, timersSaved := from, replayFrom
	save := func(c context.Context) error {
		pos := w.position()
		// The timers' checkpoint first: saved before the saga's, it is
		// there whenever the saga's is, and a restart between the two
		// starts from the lower of them.
		if err := s.saveTimers(c, timers, max(pos, saved), &timersSaved); err != nil {
			return err
		}
		if pos > saved {
			if err := s.cps.Save(c, pos); err != nil {
				if errors.Is(err, ErrCheckpointFenced) {
					return err
				}
				s.log.Warn("saga: saving the checkpoint failed; will retry", "position", pos, "err", err)
				return nil
			}
			saved = pos
			s.note(func(st *SagaStatus) { st.Saved = pos })
		}
		return nil
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
			if it.Position <= from && replayFrom < from {
				// Handled before the restart: only its timer is rebuilt.
				if it.Event != nil {
					s.replayTimer(timers, it)
				}
				continue
			}
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
			if err := save(ctx); err != nil {
				// Another instance runs the saga now: stop at once, and
				// leave the position to it.
				runErr = fmt.Errorf("saga checkpoint: %w", err)
				s.note(func(st *SagaStatus) { st.Error = runErr.Error() })
				stopWork()
				break loop
			}
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
	if runErr == nil {
		if err := save(context.WithoutCancel(ctx)); err != nil {
			runErr = fmt.Errorf("saga checkpoint: %w", err)
		}
	}
	return runErr
}

func laneOf(orderID string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(orderID))
	return int(h.Sum32() % uint32(n))
}

type sagaJob struct {
	seq     uint64
	orderID string
	event   StoredEvent
}

// handle runs one step until it succeeds, retrying transient failures,
// or until the saga stops (stop is the Run context; work outlives it
// only to finish a step cleanly).
func (s *Saga) handle(ctx, stop context.Context, timers *timerSchedule, j sagaJob) {
	if !domain.IsCanonicalOrderID(j.orderID) {
		// A stream named with another spelling of an order ID (written before
		// order IDs were made canonical): no command can address it, and
		// every step would be refused as invalid forever.
		s.log.Error("saga: an order stream's ID is not a lower-case UUID; skipped (ordo verify reports it)", "order", j.orderID, "revision", j.event.Revision)
		return
	}
	ev, err := jsonwire.DecodeEvent(j.event.Type, j.event.Data, j.event.Metadata)
	if err != nil {
		s.log.Error("saga: an order event cannot be decoded; skipped", "order", j.orderID, "revision", j.event.Revision, "err", err)
		return
	}
	ctx, tp, end := tracerOr(s.opts.Tracer).Start(ctx, "saga "+ev.Type, ev.Meta.TraceParent)
	err = retry.Do(stop, sagaRetry, func(_ context.Context, attempt int) error {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.step(sctx, timers, j.orderID, ev, timerOrigin{position: j.event.Position, traceParent: tp})
		cancel()
		if err == nil || stop.Err() != nil {
			return retry.Permanent(err) // stopped: not checkpointed, repeated after the restart
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
		return err
	})
	end(err)
}

// sagaRetry: a step is retried until it succeeds or the saga stops, at a
// pace that backs off to one attempt per two seconds.
var sagaRetry = retry.Policy{First: 50 * time.Millisecond, Max: 2 * time.Second}
