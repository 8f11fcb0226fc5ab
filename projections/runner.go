package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ordo-dev/ordo/gather"
)

// Source feeds a projection: the order streams' events from the event
// store's $all subscription.
type Source interface {
	// SubscribeOrders delivers order-stream events after position after
	// (exclusive; 0 means from the start), with checkpoints.
	SubscribeOrders(ctx context.Context, after uint64) (Feed, error)
	// Head is the $all position of the newest event, for lag reporting.
	Head(ctx context.Context) (uint64, error)
}

// Feed is a running subscription.
type Feed interface {
	// Next blocks for the next item; it ends with ctx's error.
	Next(ctx context.Context) (FeedItem, error)
	Close() error
}

// FeedItem is an event, a checkpoint position safe to resume after, or
// the news that the feed has delivered everything the store held when it
// said so (it goes live).
type FeedItem struct {
	Event      *StoredEvent
	Checkpoint uint64
	CaughtUp   bool
}

// Name of the order read-model projection (payments, shipments, refunds,
// order summaries live in one projection: they change in the same events).
const Name = "orders"

// Runner keeps the read models up to date.
type Runner struct {
	store *Store
	src   Source
	log   *slog.Logger
	batch int
	// tracer is src, when it is an EventTracer too (trace.go).
	tracer EventTracer

	// fence is the position projection_state held when this runner last
	// read or wrote it: each batch advances the checkpoint only from there
	// (see advance), so two runners on one database never both apply an
	// event. A runner that finds the row moved by another resumes after it.
	fence uint64
	// rows are the order rows this runner's committed batches wrote, read
	// instead of the database's while the runner holds the fence.
	rows rowCache

	mu     sync.Mutex
	status Status
	moved  chan struct{} // closed and replaced whenever the position advances
	// failing is when the current run of failed attempts began (zero when
	// the last attempt succeeded); loggedAt is when it was last logged.
	failing, loggedAt time.Time
}

// Status is a projection's progress, as /v1/projections shows it.
type Status struct {
	Name       string    `json:"name"`
	Position   uint64    `json:"position"`
	Events     int64     `json:"events_applied"`
	Running    bool      `json:"running"`
	Error      string    `json:"error,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
	LastEvent  time.Time `json:"last_event_at"`
	Head       uint64    `json:"head"`
	LagEvents  uint64    `json:"lag_positions"`
	LagSeconds float64   `json:"lag_seconds"`
	// CaughtUp: the projection has applied everything the event store held
	// when its subscription went live (positions alone cannot tell: the
	// last events of $all may not be order events, and no checkpoint need
	// follow them).
	CaughtUp bool `json:"caught_up"`
	// Resuming: Error is a passing failure (a lost subscription, a failed
	// write to the read models, an unreachable event store), not a stop;
	// the projection tries again by itself, FailedAttempts times so far,
	// next at NextAttemptAt, and clears Error once an attempt gets through.
	Resuming       bool       `json:"resuming,omitempty"`
	FailedAttempts int        `json:"failed_attempts,omitempty"`
	NextAttemptAt  *time.Time `json:"next_attempt_at,omitempty"`
	// Standby: another instance applies the events (it holds the
	// projections lease); this one follows the stored checkpoint, which
	// is what Position then shows.
	Standby bool `json:"standby,omitempty"`
	// Fenced counts the batches this runner rolled back because another
	// runner had advanced the checkpoint first; it then resumed after
	// that runner's checkpoint. Above zero only where two runners share
	// the read models (a lease changing hands, or no lease at all).
	Fenced int64 `json:"fenced_batches,omitempty"`
}

// NewRunner returns a runner applying up to batch events per transaction.
func NewRunner(store *Store, src Source, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tracer, _ := src.(EventTracer)
	return &Runner{store: store, src: src, log: log, batch: 4096, status: Status{Name: Name}, moved: make(chan struct{}), tracer: tracer}
}

// ErrStopped: the projection stopped for a reason that trying again
// cannot remove — an event it cannot apply, or a checkpoint the event
// store does not reach. Any other error of Run is passing, and Manager
// runs the projection again after a pause.
var ErrStopped = errors.New("the projection stopped")

// badEvent marks err as caused by an event the projection cannot apply
// (it cannot be decoded, or contradicts its order's history): it fails the
// same way every time, so the projection stops before it, and stores why,
// so that a restart does not skip the event either.
func badEvent(err error) error { return &stopError{err: err, store: true} }

// stopped marks err as a reason to stop that is not stored: it is checked
// again at every start (a checkpoint beyond the event store's head).
func stopped(err error) error { return &stopError{err: err} }

type stopError struct {
	err   error
	store bool // recorded in projection_state
}

func (e *stopError) Error() string        { return e.err.Error() }
func (e *stopError) Unwrap() error        { return e.err }
func (e *stopError) Is(target error) bool { return target == ErrStopped }

// start reads the projection's stored status, checks it against the event
// store's head, and marks it running; it returns where to resume. A
// projection stopped by an event it could not apply stays stopped.
func (r *Runner) start(ctx context.Context) (Status, error) {
	r.rows.reset() // another runner may have written since
	st, lastEvent, err := r.store.state(ctx, Name)
	if err != nil {
		return Status{}, err
	}
	if st.Error != "" {
		r.setStatus(func(s *Status) { *s = st; s.Running = false })
		return Status{}, stopped(fmt.Errorf("projection %s stopped earlier: %s; fix the cause and clear it (rebuild) to resume", Name, st.Error))
	}
	r.fence = st.Position
	if st.Position, err = r.resumeAfter(ctx, st.Position, lastEvent); err != nil {
		return Status{}, err
	}
	r.setStatus(func(s *Status) {
		failed := *s
		*s = st
		s.Running, s.Fenced = true, failed.Fenced
		if failed.FailedAttempts > 0 {
			// Still failing until an attempt gets through.
			s.Error, s.Resuming, s.FailedAttempts = failed.Error, true, failed.FailedAttempts
		}
	})
	return st, nil
}

// resumeAfter checks the checkpoint against the event store's head and
// returns the position to resume after. A checkpoint beyond the head
// would be waited on in silence while new events, which reuse the lost
// positions, went unapplied; so if an event the read models applied is no
// longer in the store, the projection refuses to start. If only the
// checkpoint is beyond the head — EventStoreDB checkpoints at the end of
// its log, past the last event; a store that lost only events of other
// streams — it resumes after the last event it applied: every order event
// after that one is yet to be applied, wherever the checkpoint is.
func (r *Runner) resumeAfter(ctx context.Context, checkpoint, lastEvent uint64) (uint64, error) {
	if checkpoint == 0 {
		return 0, nil
	}
	head, err := r.src.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the event store's head: %w", err)
	}
	switch {
	case checkpoint <= head:
		return checkpoint, nil
	case lastEvent > head:
		return 0, stopped(fmt.Errorf("projection checkpoint %d (last applied event at %d) is beyond the event store's head %d: "+
			"the store lost events or belongs to another data directory; rebuild with `ordo replay --all` or restore the store",
			checkpoint, lastEvent, head))
	}
	r.log.Info("projection checkpoint is beyond the event store's head, but every event it applied is there; resuming after the last one",
		"projection", Name, "checkpoint", checkpoint, "head", head, "last_event", lastEvent)
	return lastEvent, nil
}

// Run applies events until ctx ends (returning nil) or it fails: an event
// that cannot be applied stops it (the error wraps ErrStopped, is stored,
// and stays visible in Status); any other failure returns an error that
// leaves the read models as the last committed batch left them. When
// another runner advances the same read models' checkpoint first, Run
// drops its batch and resumes after that checkpoint.
func (r *Runner) Run(ctx context.Context) error {
	for {
		err := r.runFromCheckpoint(ctx)
		if !errors.Is(err, errFenced) {
			return err
		}
		r.fenced(err)
	}
}

// fenced counts and logs a batch another runner got ahead of.
func (r *Runner) fenced(err error) {
	r.setStatus(func(s *Status) { s.Fenced++ })
	r.log.Info("another runner advanced the projection first; resuming after its checkpoint", "projection", Name, "err", err)
}

// runFromCheckpoint is one run of Run: from the stored checkpoint until
// ctx ends, a failure, or another runner's checkpoint (errFenced).
func (r *Runner) runFromCheckpoint(ctx context.Context) error {
	st, err := r.start(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return r.stop(ctx, nil)
		}
		return r.fail(ctx, err)
	}
	feed, err := r.src.SubscribeOrders(ctx, st.Position)
	if err != nil {
		if ctx.Err() != nil {
			return r.stop(ctx, nil)
		}
		return r.fail(ctx, fmt.Errorf("%w: subscribe: %v", ErrFeedLost, err))
	}
	defer feed.Close()
	items := make(chan item, 4*r.batch)
	pumpErr := make(chan error, 1)
	go func() {
		defer close(items)
		for {
			it, err := feed.Next(ctx)
			if err != nil {
				pumpErr <- err
				return
			}
			next := item{pos: it.Checkpoint, caughtUp: it.CaughtUp}
			if it.Event != nil {
				next = eventItem(it.Event)
			}
			select {
			case items <- next:
			case <-ctx.Done():
				return
			}
		}
	}()
	// One batch slice serves every batch: under live traffic a batch holds a
	// handful of events, and a fresh slice of r.batch items per batch was a
	// large allocation to zero and collect each time.
	batch := make([]item, 0, r.batch)
	for {
		first, ok := <-items
		if !ok {
			if ctx.Err() != nil {
				return r.stop(ctx, nil)
			}
			return r.fail(ctx, fmt.Errorf("%w: %v", ErrFeedLost, <-pumpErr))
		}
		clear(batch) // let the previous batch's strings go
		// What has queued meanwhile goes into the same transaction; the
		// runner does not wait for more (a linger of 1 ms measured no
		// gain: see BENCHMARKS.md).
		batch = gather.Queued(append(batch[:0], first), items, r.batch)
		if err := r.applyBatch(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return r.stop(ctx, nil)
			}
			if errors.Is(err, errFenced) {
				return err
			}
			return r.fail(ctx, err)
		}
	}
}

// item is what the feed delivered: an event, decoded, or a checkpoint or
// the news that it caught up. It keeps only what applyBatch needs of the
// stored event, so the event's bytes can be collected once decoded.
type item struct {
	event    bool
	pos      uint64 // the event's position, or the checkpoint
	created  time.Time
	caughtUp bool
	change   change
}

// eventItem decodes a stored event into an item.
func eventItem(e *StoredEvent) item {
	return item{event: true, pos: e.Position, created: e.Created, change: decodeChange(e)}
}

// applyBatch applies events and advances the checkpoint in one transaction.
func (r *Runner) applyBatch(ctx context.Context, items []item) error {
	return r.applyItems(ctx, items, false)
}

// applyItems is applyBatch; with bulk, the rows the batch creates may be
// written in the database's bulk form (see Store.begin).
func (r *Runner) applyItems(ctx context.Context, items []item, bulk bool) error {
	var pos, lastEvent uint64
	var n int64
	var last time.Time
	caughtUp := false
	changes := make([]change, 0, len(items))
	for _, it := range items {
		if !it.event {
			pos, caughtUp = max(pos, it.pos), caughtUp || it.caughtUp
			continue
		}
		changes = append(changes, it.change)
		pos, lastEvent, n, last = max(pos, it.pos), max(lastEvent, it.pos), n+1, it.created
	}
	if pos == 0 {
		if caughtUp {
			r.recovered()
			r.setStatus(func(s *Status) { s.CaughtUp = true })
		}
		return nil
	}
	started := time.Now()
	tx, bulkInsert, release, err := r.store.begin(ctx, bulk)
	if err != nil {
		return err
	}
	defer release()
	defer tx.Rollback()
	b := newBatch(ctx, tx, r.store.stmts)
	b.bulkInsert, b.cache = bulkInsert, &r.rows
	now := time.Now().UTC()
	// The checkpoint moves first: a runner that finds it moved by another
	// writes nothing, and concurrent runners queue on its row.
	if err := advance(b, r.fence, pos, n, lastEvent, now); err != nil {
		return err
	}
	if err := b.applyAll(changes); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		r.rows.reset() // the commit may have happened
		return fmt.Errorf("commit read-model batch: %w", err)
	}
	r.rows.keep(b.touched)
	r.fence = pos
	r.traceBatch(changes, started, time.Now())
	r.recovered()
	r.setStatus(func(s *Status) {
		s.Position, s.Events, s.UpdatedAt = max(s.Position, pos), s.Events+n, now
		s.CaughtUp = s.CaughtUp || caughtUp
		if !last.IsZero() {
			s.LastEvent = last
		}
	})
	return nil
}

// errFenced: the projection's checkpoint is no longer where this runner
// last saw it: another runner on the same read models applied the events
// first. The batch was rolled back; the runner resumes after the stored
// checkpoint.
var errFenced = errors.New("the checkpoint was advanced by another runner")

// advance moves the checkpoint of the projection from fence to pos inside
// the batch's transaction (prepared statements: it runs once a batch),
// adding n applied events, or fails with errFenced if the stored
// checkpoint is not fence. It must be the transaction's first write: the
// conditional UPDATE takes the row's lock, so a second runner's batch
// waits for the first one's commit and then finds the row moved (on
// PostgreSQL, READ COMMITTED re-checks the WHERE on the committed row; on
// SQLite, the update takes the database's write lock before anything of
// the batch is read). The first batch creates the row.
func advance(b *batch, fence, pos uint64, n int64, lastEvent uint64, now time.Time) error {
	if fence == 0 {
		if _, err := b.execResult(`INSERT INTO projection_state (name, position, events, updated_at, last_event) VALUES (?, 0, 0, ?, 0)
			ON CONFLICT (name) DO NOTHING`, []any{Name, formatTime(now)}); err != nil {
			return fmt.Errorf("create the checkpoint: %w", err)
		}
	}
	res, err := b.execResult(`UPDATE projection_state SET position = ?, events = events + ?, updated_at = ?,
		last_event = CASE WHEN ? > last_event THEN ? ELSE last_event END
		WHERE name = ? AND position = ?`, []any{pos, n, formatTime(now), lastEvent, lastEvent, Name, fence})
	if err != nil {
		return fmt.Errorf("advance checkpoint: %w", err)
	}
	if moved, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("advance checkpoint: %w", err)
	} else if moved == 0 {
		return fmt.Errorf("%w: it is no longer at %d", errFenced, fence)
	}
	return nil
}

// ErrFeedLost: the subscription to the event store failed (it restarted,
// the network dropped). Nothing is wrong with the read models; Manager
// starts the runner again, and it resumes from its checkpoint.
var ErrFeedLost = errors.New("the event store subscription was lost")

// fail ends a run that failed. An error wrapping ErrStopped stops the
// projection: a bad event's is stored, so a restart does not skip the
// event. Any other failure is passing: it is shown in the status while it
// lasts, never stored, and the run can be tried again.
func (r *Runner) fail(ctx context.Context, err error) error {
	if errors.Is(err, ErrStopped) {
		return r.stop(ctx, err)
	}
	r.setStatus(func(s *Status) {
		s.Running, s.Error, s.Resuming, s.CaughtUp = false, err.Error(), true, false
		s.FailedAttempts++
	})
	return err
}

// stop records why the projection stopped, so the API shows it; a bad
// event's error is also stored.
func (r *Runner) stop(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		r.setStatus(func(s *Status) { s.Running = false })
		return nil
	}
	r.log.Error("projection stopped", "projection", Name, "err", err)
	msg := err.Error()
	if se := (*stopError)(nil); errors.As(err, &se) && se.store {
		_, _ = r.store.db.ExecContext(context.WithoutCancel(ctx), `INSERT INTO projection_state (name, error, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET error = excluded.error, updated_at = excluded.updated_at`, Name, msg, formatTime(time.Now()))
	}
	r.setStatus(func(s *Status) {
		s.Running, s.Error, s.Resuming, s.CaughtUp, s.NextAttemptAt = false, msg, false, false, nil
	})
	return fmt.Errorf("projection %s stopped: %w", Name, err)
}

// followEvery is how often a runner on standby reads the stored
// checkpoint.
var followEvery = 200 * time.Millisecond

// follow shows the stored checkpoint as this runner's progress while
// another process's runner applies the events to the same read models, so
// that WaitFor (read-your-writes) and the status answer truthfully on
// standby; it returns when ctx ends.
func (r *Runner) follow(ctx context.Context) {
	r.setStatus(func(s *Status) { s.Running, s.Standby = false, true })
	defer r.setStatus(func(s *Status) { s.Standby = false })
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for {
		st, _, err := r.store.state(ctx, Name)
		head, herr := r.src.Head(ctx)
		if err == nil {
			r.setStatus(func(s *Status) {
				s.Position, s.Events, s.UpdatedAt, s.Error, s.Resuming = st.Position, st.Events, st.UpdatedAt, st.Error, false
				s.CaughtUp = herr == nil && st.Position >= head
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Runner) setStatus(f func(*Status)) {
	r.mu.Lock()
	before := r.status
	f(&r.status)
	// Waiters wake on progress, and on a change of error (to stop waiting
	// for a projection that stopped).
	if s := &r.status; s.Position != before.Position || s.CaughtUp != before.CaughtUp || s.Error != before.Error || s.Resuming != before.Resuming {
		close(r.moved)
		r.moved = make(chan struct{})
	}
	r.mu.Unlock()
}

// Status reports progress and lag against the event store's head.
func (r *Runner) Status(ctx context.Context) Status {
	r.mu.Lock()
	s := r.status
	r.mu.Unlock()
	if head, err := r.src.Head(ctx); err == nil {
		s.Head = head
		if head > s.Position {
			s.LagEvents = head - s.Position
			if !s.LastEvent.IsZero() {
				s.LagSeconds = time.Since(s.LastEvent).Seconds()
			}
		}
	}
	return s
}

// WaitFor blocks until the projection has passed position (read-your-
// writes) or ctx ends.
func (r *Runner) WaitFor(ctx context.Context, position uint64) error {
	return r.wait(ctx, func(s Status) bool { return s.Position >= position }, func(s Status) string {
		return fmt.Sprintf("read model has not reached position %d (at %d)", position, s.Position)
	})
}

// WaitCaughtUp blocks until the projection has caught up with the event
// store (see Status.CaughtUp), stopped with an error, or ctx ends.
func (r *Runner) WaitCaughtUp(ctx context.Context) error {
	return r.wait(ctx, func(s Status) bool { return s.CaughtUp }, func(Status) string { return "read model has not caught up" })
}

// wait blocks until done holds for the status, the projection stops with
// an error, or ctx ends (the error then says what was awaited).
func (r *Runner) wait(ctx context.Context, done func(Status) bool, awaited func(Status) string) error {
	for {
		r.mu.Lock()
		st, moved := r.status, r.moved
		r.mu.Unlock()
		if done(st) {
			return nil
		}
		if st.Error != "" && !st.Resuming {
			return fmt.Errorf("%w: %s", ErrStopped, st.Error)
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", awaited(st), ctx.Err())
		}
	}
}

// state loads the stored progress of a projection, and the position of
// the last event it applied.
func (s *Store) state(ctx context.Context, name string) (st Status, lastEvent uint64, err error) {
	st = Status{Name: name}
	var updated string
	err = s.db.QueryRowContext(ctx, `SELECT position, events, updated_at, error, last_event FROM projection_state WHERE name = ?`, name).
		Scan(&st.Position, &st.Events, &updated, &st.Error, &lastEvent)
	if errors.Is(err, sql.ErrNoRows) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, fmt.Errorf("load projection state: %w", err)
	}
	st.UpdatedAt = parseTime(updated)
	return st, lastEvent, nil
}
