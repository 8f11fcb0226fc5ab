package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// currentFile names the read-model database in use, so a restart opens the
// one the last rebuild swapped in.
const currentFile = "readmodels.current"

// Manager owns the read models — SQLite files in a directory, or schemas
// of a PostgreSQL database: the generation in use, the runner keeping it
// current, and rebuilds into a fresh generation that replace it atomically
// once they have caught up.
type Manager struct {
	gens generations
	src  Source
	log  *slog.Logger

	mu      sync.RWMutex
	name    string // the generation in use
	store   *Store
	runner  *Runner
	stop    context.CancelFunc
	stopped chan error
	closed  bool

	job rebuildJob // the rebuild started through StartRebuild, if any
}

// OpenManager opens the read models in SQLite files in dir and starts
// keeping them current.
func OpenManager(ctx context.Context, dir string, src Source, log *slog.Logger) (*Manager, error) {
	return OpenManagerDSN(ctx, "", dir, src, log)
}

// OpenManagerDSN opens the read models named by dsn — a PostgreSQL
// database for postgres://…, or SQLite files in dir when dsn is "" — and
// starts keeping them current.
func OpenManagerDSN(ctx context.Context, dsn, dir string, src Source, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gens, err := openGenerations(ctx, dsn, dir)
	if err != nil {
		return nil, err
	}
	name, err := gens.current(ctx)
	if err != nil {
		gens.close()
		return nil, err
	}
	m := &Manager{gens: gens, src: src, log: log}
	store, err := gens.open(ctx, name)
	if err != nil {
		gens.close()
		return nil, err
	}
	m.name, m.store = name, store
	m.runner, m.stop, m.stopped = m.start(store, 0)
	return m, nil
}

// start runs a runner over store, beginning no earlier than from.
func (m *Manager) start(store *Store, from uint64) (*Runner, context.CancelFunc, chan error) {
	r := m.newRunner(store, from)
	stop, stopped := m.run(r)
	return r, stop, stopped
}

// newRunner returns a runner over store that begins no earlier than from.
func (m *Manager) newRunner(store *Store, from uint64) *Runner {
	r := NewRunner(store, m.src, m.log)
	r.from = from
	return r
}

// run runs r in the background until the returned stop is called.
func (m *Manager) run(r *Runner) (stop context.CancelFunc, stopped chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runResuming(ctx, r) }()
	return cancel, done
}

// runResuming runs r, and runs it again after a growing pause whenever
// only its subscription failed, so a passing event-store outage never
// stops the read models for good.
func runResuming(ctx context.Context, r *Runner) error {
	pause := 100 * time.Millisecond
	for {
		started := time.Now()
		err := r.Run(ctx)
		if !errors.Is(err, ErrFeedLost) || ctx.Err() != nil {
			return err
		}
		if time.Since(started) > time.Minute {
			pause = 100 * time.Millisecond // it ran fine for a while
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// Current returns the store and runner in use.
func (m *Manager) Current() (*Store, *Runner) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.store, m.runner
}

// Rebuild projects the whole history again into a fresh generation while the
// current one keeps serving, and swaps it in once it has caught up with the
// live one. An interrupted rebuild (ctx ended) leaves the current read
// models untouched; calling Rebuild again resumes from where it stopped,
// unless opts.Restart discards the partial one.
func (m *Manager) Rebuild(ctx context.Context, opts RebuildOptions) error {
	m.mu.RLock()
	name := m.name
	m.mu.RUnlock()
	next := m.gens.other(name)
	if opts.Restart {
		if err := m.gens.drop(ctx, next); err != nil {
			return err
		}
	}
	fresh, err := m.gens.open(ctx, next)
	if err != nil {
		return err
	}
	runner := m.newRunner(fresh, opts.From)
	stopReports := reportProgress(ctx, runner, opts)
	// Where the source can read the history in bulk, the fresh read models
	// load it that way first; the runner then follows from where the load
	// ended.
	if h, ok := m.src.(History); ok {
		if err := runner.load(ctx, h); err != nil {
			stopReports()
			fresh.Close()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	stop, stopped := m.run(runner)
	abort := func(err error) error {
		stopReports()
		stop()
		<-stopped
		fresh.Close()
		return err
	}
	// Catch up with the event store, then with the live read model, which
	// keeps moving meanwhile (and may itself still be catching up).
	if err := runner.WaitCaughtUp(ctx); err != nil {
		return abort(fmt.Errorf("rebuild: %w", err))
	}
	for {
		_, live := m.Current()
		target := live.Status(ctx).Position
		if err := runner.WaitFor(ctx, target); err != nil {
			return abort(fmt.Errorf("rebuild: %w", err))
		}
		if live.Status(ctx).Position <= runner.Status(ctx).Position {
			break
		}
		select {
		case <-ctx.Done():
			return abort(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopReports()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return abort(errors.New("rebuild: the read models were closed"))
	}
	if err := m.gens.swap(ctx, next); err != nil {
		m.mu.Unlock()
		return abort(err)
	}
	oldName, oldStore, oldStop, oldStopped := m.name, m.store, m.stop, m.stopped
	m.name, m.store, m.runner, m.stop, m.stopped = next, fresh, runner, stop, stopped
	m.mu.Unlock()
	oldStop()
	<-oldStopped
	oldStore.Close()
	if err := m.gens.drop(context.WithoutCancel(ctx), oldName); err != nil {
		m.log.Warn("the replaced read models could not be deleted", "generation", oldName, "err", err)
	}
	m.log.Info("read models rebuilt and swapped in", "generation", next)
	return nil
}

// Close stops the runner and closes the read models.
func (m *Manager) Close() error {
	m.CancelRebuild()
	m.mu.Lock()
	m.closed = true
	stop, stopped, store := m.stop, m.stopped, m.store
	m.mu.Unlock()
	stop()
	<-stopped
	return errors.Join(store.Close(), m.gens.close())
}

// writeFileAtomic replaces path with content: a rename is atomic, a write is not.
func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
