package commands

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
)

// The saga keeps the payment timers itself, as a schedule in memory
// derived from the order events it follows: StockReserved starts an
// order's timer (deadline: the event's time plus the payment timeout),
// PaymentSucceeded and OrderCancelled stop it. When a timer is due the
// saga sends the order's ExpirePayment through PaymentTimeouts (into the
// command stream, where the workers handle it like any command). A timer
// costs nothing outside the process until it fires; most never do.
//
// The schedule is rebuilt after a restart or a takeover from the event
// store: the saga keeps a second checkpoint (SagaOptions.TimerCheckpoints)
// that never passes the StockReserved of a timer still pending, and reads
// the order events from there, up to its own checkpoint, for the timers
// alone. A timer that fell due meanwhile fires at once. Firing twice is
// harmless: ExpirePayment carries one command ID per order, and the
// lifecycle refuses it once the order is paid or cancelled.

// PaymentTimeouts send the ExpirePayment command of an order whose
// payment timer is due.
type PaymentTimeouts interface {
	// Expire sends cmd under commandID, continuing the trace traceParent
	// (a W3C traceparent; empty: none). An error means it was not sent;
	// the saga tries again.
	Expire(ctx context.Context, cmd domain.ExpirePayment, commandID, traceParent string) error
}

// paymentTimer is one order's pending payment timer.
type paymentTimer struct {
	orderID     string
	deadline    time.Time
	position    uint64 // $all position of the StockReserved that started it
	traceParent string // of the saga step that started it
	index       int    // in timerSchedule.due
}

// timerSchedule is the set of pending payment timers, by order and by
// deadline. Safe for concurrent use.
type timerSchedule struct {
	mu      sync.Mutex
	byOrder map[string]*paymentTimer
	due     timerHeap
	wake    chan struct{} // a timer was added: the firing loop looks again
}

func newTimerSchedule() *timerSchedule {
	return &timerSchedule{byOrder: map[string]*paymentTimer{}, wake: make(chan struct{}, 1)}
}

// start starts (or replaces) the order's timer.
func (ts *timerSchedule) start(orderID string, deadline time.Time, position uint64, traceParent string) {
	ts.mu.Lock()
	if old, ok := ts.byOrder[orderID]; ok {
		heap.Remove(&ts.due, old.index)
	}
	t := &paymentTimer{orderID: orderID, deadline: deadline, position: position, traceParent: traceParent}
	ts.byOrder[orderID] = t
	heap.Push(&ts.due, t)
	ts.mu.Unlock()
	select {
	case ts.wake <- struct{}{}:
	default:
	}
}

// stop removes the order's timer, if it has one.
func (ts *timerSchedule) stop(orderID string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t, ok := ts.byOrder[orderID]; ok {
		heap.Remove(&ts.due, t.index)
		delete(ts.byOrder, orderID)
	}
}

// pending is the number of timers that have neither fired nor been stopped.
func (ts *timerSchedule) pending() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.byOrder)
}

// oldest returns the lowest $all position of a pending timer's
// StockReserved, and false when no timer is pending.
func (ts *timerSchedule) oldest() (uint64, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var low uint64
	found := false
	for _, t := range ts.byOrder {
		if !found || t.position < low {
			low, found = t.position, true
		}
	}
	return low, found
}

// next returns the earliest timer, and false when none is pending.
func (ts *timerSchedule) next() (paymentTimer, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.due) == 0 {
		return paymentTimer{}, false
	}
	return *ts.due[0], true
}

// fired removes t once it was sent, unless the order's timer was replaced
// meanwhile (then the new one stays).
func (ts *timerSchedule) fired(t paymentTimer) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if cur, ok := ts.byOrder[t.orderID]; ok && cur.deadline.Equal(t.deadline) && cur.position == t.position {
		heap.Remove(&ts.due, cur.index)
		delete(ts.byOrder, t.orderID)
	}
}

// postpone moves t's deadline to at, after it could not be sent, unless
// the timer was replaced or stopped meanwhile.
func (ts *timerSchedule) postpone(t paymentTimer, at time.Time) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if cur, ok := ts.byOrder[t.orderID]; ok && cur.deadline.Equal(t.deadline) && cur.position == t.position {
		cur.deadline = at
		heap.Fix(&ts.due, cur.index)
	}
}

// run fires due timers with fire until ctx ends. A timer that could not
// be sent is tried again after a pause that grows to retryMax.
func (ts *timerSchedule) run(ctx context.Context, now func() time.Time, fire func(context.Context, paymentTimer) error, log *slog.Logger) {
	const retryFirst, retryMax = 100 * time.Millisecond, 5 * time.Second
	pause := retryFirst
	clock := time.NewTimer(time.Hour)
	defer clock.Stop()
	for {
		wait := time.Hour
		if t, ok := ts.next(); ok {
			wait = t.deadline.Sub(now())
			if wait <= 0 {
				if err := fire(ctx, t); err != nil {
					if ctx.Err() != nil {
						return
					}
					log.Warn("saga: sending a due payment timeout failed; will retry", "order", t.orderID, "retry_in", pause, "err", err)
					ts.postpone(t, now().Add(pause))
					pause = min(2*pause, retryMax)
					continue
				}
				pause = retryFirst
				ts.fired(t)
				continue
			}
		}
		clock.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-ts.wake:
		case <-clock.C:
		}
	}
}

// timerHeap orders timers by deadline (container/heap).
type timerHeap []*paymentTimer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *timerHeap) Push(x any) {
	t := x.(*paymentTimer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// timerOrigin is where a timer started: the StockReserved's $all position
// and the traceparent of the saga step that handled it.
type timerOrigin struct {
	position    uint64
	traceParent string
}

// timerStep keeps the payment timers for one order event: StockReserved
// starts the order's timer, an on-time PaymentSucceeded or OrderCancelled
// stops it (a timer that fires anyway meets a paid or cancelled order,
// which the lifecycle refuses to expire).
func (s *Saga) timerStep(timers *timerSchedule, orderID string, ev domain.Event, at timerOrigin) {
	switch d := ev.Data.(type) {
	case domain.StockReserved:
		timers.start(orderID, ev.Meta.OccurredAt.Add(s.opts.PaymentTimeout), at.position, at.traceParent)
	case domain.PaymentSucceeded:
		if !d.Late && !d.Extra {
			timers.stop(orderID)
		}
	case domain.OrderCancelled:
		timers.stop(orderID)
	}
}

// replayTimer rebuilds the timers from an event the saga handled before
// it restarted; the saga's other steps are not repeated.
func (s *Saga) replayTimer(timers *timerSchedule, it SagaItem) {
	switch it.Event.Type {
	case domain.EvtStockReserved, domain.EvtPaymentSucceeded, domain.EvtOrderCancelled:
	default:
		return
	}
	orderID := it.Stream[len(StreamName("")):]
	if !domain.IsCanonicalOrderID(orderID) {
		return // skipped by the saga too (handle)
	}
	ev, err := jsonwire.DecodeEvent(it.Event.Type, it.Event.Data, it.Event.Metadata)
	if err != nil {
		return // skipped and logged by the saga when it first met it
	}
	s.timerStep(timers, orderID, ev, timerOrigin{position: it.Position, traceParent: ev.Meta.TraceParent})
}

// fire sends the ExpirePayment of a due timer, unless the order no longer
// awaits payment: the event that stops its timer has not reached the saga
// yet (it lags, or is rebuilding its timers after a restart), and a
// command would change nothing. A read that fails leaves the decision to
// the command.
func (s *Saga) fire(ctx context.Context, t paymentTimer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if s.orders != nil {
		if view, err := s.orders.GetOrder(ctx, t.orderID); err == nil && view.State != domain.StateAwaitingPayment {
			return nil
		}
	}
	return s.timeouts.Expire(ctx, domain.ExpirePayment{Order: t.orderID, Deadline: t.deadline}, stepID(t.orderID, "expire-payment"), t.traceParent)
}

// timersFrom is the position after which Run reads the order events: the
// timers' checkpoint when it is behind the saga's (from), else from. A
// timers' checkpoint of 0 is none yet (a data directory from before the
// timers were kept here: the timers of its older orders are JetStream
// message schedules, which fire by themselves).
func (s *Saga) timersFrom(ctx context.Context, from uint64) (uint64, error) {
	if s.opts.TimerCheckpoints == nil {
		return from, nil
	}
	pos, err := s.opts.TimerCheckpoints.Load(ctx)
	if err != nil {
		return 0, fmt.Errorf("saga timers' checkpoint: %w", err)
	}
	if pos == 0 || pos > from {
		return from, nil
	}
	return pos, nil
}

// saveTimers saves the timers' checkpoint: just before the oldest pending
// timer's StockReserved, and never past upTo, the position up to which
// every event has been handled.
func (s *Saga) saveTimers(ctx context.Context, timers *timerSchedule, upTo uint64, timersSaved *uint64) error {
	if s.opts.TimerCheckpoints == nil {
		return nil
	}
	pos := upTo
	if low, ok := timers.oldest(); ok && low > 0 && low-1 < pos {
		pos = low - 1
	}
	if pos == *timersSaved || pos == 0 {
		return nil
	}
	if err := s.opts.TimerCheckpoints.Save(ctx, pos); err != nil {
		if errors.Is(err, ErrCheckpointFenced) {
			return err
		}
		s.log.Warn("saga: saving the timers' checkpoint failed; will retry", "position", pos, "err", err)
		return nil
	}
	*timersSaved = pos
	return nil
}
