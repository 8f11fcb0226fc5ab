package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
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
	from  uint64 // a rebuild's starting position; events before it are not applied

	mu     sync.Mutex
	status Status
	moved  chan struct{} // closed and replaced whenever the position advances
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
	// Resuming: Error is a lost subscription, not a stop; the runner
	// starts again by itself.
	Resuming bool `json:"resuming,omitempty"`
}

// NewRunner returns a runner applying up to batch events per transaction.
func NewRunner(store *Store, src Source, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{store: store, src: src, log: log, batch: 4096, status: Status{Name: Name}, moved: make(chan struct{})}
}

// start reads the projection's stored status and marks it running from
// its checkpoint (or the runner's starting position, whichever is later).
// A projection stopped by an event it could not apply stays stopped.
func (r *Runner) start(ctx context.Context) (Status, error) {
	st, err := r.store.state(ctx, Name)
	if err != nil {
		return Status{}, err
	}
	if st.Error != "" {
		r.setStatus(func(s *Status) { *s = st; s.Running = false })
		return Status{}, fmt.Errorf("projection %s stopped earlier: %s; fix the cause and clear it (rebuild) to resume", Name, st.Error)
	}
	st.Position = max(st.Position, r.from)
	r.setStatus(func(s *Status) { *s = st; s.Running = true })
	return st, nil
}

// Run applies events until ctx ends (returning nil) or an event cannot be
// applied (returning the error, which stays visible in Status).
func (r *Runner) Run(ctx context.Context) error {
	st, err := r.start(ctx)
	if err != nil {
		return err
	}
	feed, err := r.src.SubscribeOrders(ctx, st.Position)
	if err != nil {
		if ctx.Err() != nil {
			return r.stop(ctx, nil)
		}
		return r.lost(fmt.Errorf("subscribe: %w", err))
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
	for {
		first, ok := <-items
		if !ok {
			if ctx.Err() != nil {
				r.setStatus(func(s *Status) { s.Running = false })
				return nil
			}
			return r.lost(<-pumpErr)
		}
		batch := append(make([]item, 0, r.batch), first)
	fill:
		for len(batch) < r.batch {
			select {
			case it, ok := <-items:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		if err := r.applyBatch(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return r.stop(ctx, err)
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
	var pos uint64
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
		pos, n, last = max(pos, it.pos), n+1, it.created
	}
	if pos == 0 {
		if caughtUp {
			r.setStatus(func(s *Status) { s.CaughtUp = true })
		}
		return nil
	}
	tx, bulkInsert, release, err := r.store.begin(ctx, bulk)
	if err != nil {
		return err
	}
	defer release()
	defer tx.Rollback()
	b := newBatch(ctx, tx, r.store.stmts)
	b.bulkInsert = bulkInsert
	if err := b.applyAll(changes); err != nil {
		return err
	}
	now := time.Now().UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO projection_state (name, position, events, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, events = projection_state.events + ?, updated_at = excluded.updated_at`,
		Name, pos, n, now.Format(time.RFC3339Nano), n); err != nil {
		return fmt.Errorf("advance checkpoint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit read-model batch: %w", err)
	}
	r.setStatus(func(s *Status) {
		s.Position, s.Events, s.UpdatedAt = max(s.Position, pos), s.Events+n, now
		s.CaughtUp = s.CaughtUp || caughtUp
		if !last.IsZero() {
			s.LastEvent = last
		}
	})
	return nil
}

// ErrFeedLost: the subscription to the event store failed (it restarted,
// the network dropped). Nothing is wrong with the read models; Manager
// starts the runner again, and it resumes from its checkpoint.
var ErrFeedLost = errors.New("the event store subscription was lost")

// lost reports a failed subscription: shown in the status while it lasts,
// never stored, so it clears itself when the runner resumes.
func (r *Runner) lost(err error) error {
	r.log.Warn("projection lost its subscription; it resumes when the event store answers", "projection", Name, "err", err)
	msg := fmt.Sprintf("subscription lost, resuming: %v", err)
	r.setStatus(func(s *Status) { s.Running, s.Error, s.Resuming = false, msg, true })
	return fmt.Errorf("%w: %v", ErrFeedLost, err)
}

// stop records a fatal error so the API shows why the projection stopped.
func (r *Runner) stop(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		r.setStatus(func(s *Status) { s.Running = false })
		return nil
	}
	r.log.Error("projection stopped", "projection", Name, "err", err)
	msg := err.Error()
	_, _ = r.store.db.ExecContext(context.WithoutCancel(ctx), `INSERT INTO projection_state (name, error, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET error = excluded.error, updated_at = excluded.updated_at`, Name, msg, time.Now().UTC().Format(time.RFC3339Nano))
	r.setStatus(func(s *Status) { s.Running, s.Error = false, msg })
	return fmt.Errorf("projection %s stopped: %w", Name, err)
}

func (r *Runner) setStatus(f func(*Status)) {
	r.mu.Lock()
	before, wasCaughtUp := r.status.Position, r.status.CaughtUp
	f(&r.status)
	if r.status.Position != before || r.status.CaughtUp != wasCaughtUp {
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
			return fmt.Errorf("projection %s is stopped: %s", Name, st.Error)
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", awaited(st), ctx.Err())
		}
	}
}

// state loads the stored progress of a projection.
func (s *Store) state(ctx context.Context, name string) (Status, error) {
	st := Status{Name: name}
	var updated string
	err := s.db.QueryRowContext(ctx, `SELECT position, events, updated_at, error FROM projection_state WHERE name = ?`, name).
		Scan(&st.Position, &st.Events, &updated, &st.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("load projection state: %w", err)
	}
	st.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
	return st, nil
}
