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
	gate Gate

	mu      sync.RWMutex
	name    string // the generation in use
	store   *Store
	runner  *Runner
	stop    context.CancelFunc
	stopped chan error
	closed  bool

	job rebuildJob // the rebuild started through StartRebuild, if any

	// unwatch stops following the swaps other processes make (gated
	// managers only, see followSwaps); watched is closed once it stopped.
	unwatch context.CancelFunc
	watched chan struct{}
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
	return OpenManagerConfig(ctx, ManagerConfig{DSN: dsn, Dir: dir, Source: src, Logger: log})
}

// Gate says when this process may apply events to read models that other
// processes share (one PostgreSQL database for several instances): it
// calls run once it may — it holds a lease, say — with a context that
// ends when it may no longer, and returns when run has returned or ctx
// ends. Nothing else is needed for correctness (the checkpoint fences
// every batch, see advance); the gate spares the database the work of
// runners whose batches would be rolled back.
type Gate func(ctx context.Context, run func(ctx context.Context) error) error

// ManagerConfig is what OpenManagerConfig needs.
type ManagerConfig struct {
	DSN    string // postgres://…, or "" for SQLite files in Dir
	Dir    string
	Source Source
	Logger *slog.Logger
	// Gate, if set, runs the live read models' runner only when it lets
	// it; meanwhile the runner follows the checkpoint the other process
	// stores, on standby (see Status.Standby). Nil runs it all along.
	Gate Gate
}

// OpenManagerConfig opens the read models cfg names and starts keeping
// them current.
func OpenManagerConfig(ctx context.Context, cfg ManagerConfig) (*Manager, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gens, err := openGenerations(ctx, cfg.DSN, cfg.Dir)
	if err != nil {
		return nil, err
	}
	name, err := gens.current(ctx)
	if err != nil {
		gens.close()
		return nil, err
	}
	m := &Manager{gens: gens, src: cfg.Source, log: log, gate: cfg.Gate}
	store, err := gens.open(ctx, name)
	if err != nil {
		gens.close()
		return nil, err
	}
	m.name, m.store = name, store
	m.runner, m.stop, m.stopped = m.start(store)
	if m.gate != nil {
		wctx, unwatch := context.WithCancel(context.Background())
		m.unwatch, m.watched = unwatch, make(chan struct{})
		go func() {
			defer close(m.watched)
			m.followSwaps(wctx)
		}()
	}
	return m, nil
}

// swapCheckEvery is how often a gated manager looks for a generation
// swapped in by another process.
var swapCheckEvery = time.Second

// followSwaps keeps a gated manager — read models shared with other
// processes — on the generation in use: when another process's rebuild
// swaps in the other generation (and drops this one), the manager opens
// it and keeps it current instead, under the gate. It returns when ctx
// ends.
func (m *Manager) followSwaps(ctx context.Context) {
	t := time.NewTicker(swapCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		name, err := m.gens.current(ctx)
		if err != nil {
			continue // the database is away; the runner reports it
		}
		m.mu.RLock()
		same := name == m.name
		m.mu.RUnlock()
		if same {
			continue
		}
		if err := m.swapIn(ctx, name); err != nil && ctx.Err() == nil {
			m.log.Warn("another instance swapped in rebuilt read models, which could not be opened here; trying again", "generation", name, "err", err)
		}
	}
}

// swapIn makes name, swapped in elsewhere, the generation in use here.
func (m *Manager) swapIn(ctx context.Context, name string) error {
	store, err := m.gens.open(ctx, name)
	if err != nil {
		return err
	}
	runner, stop, stopped := m.start(store)
	m.mu.Lock()
	if m.closed || m.name == name {
		m.mu.Unlock()
		stop()
		<-stopped
		return store.Close()
	}
	oldStore, oldStop, oldStopped := m.store, m.stop, m.stopped
	m.name, m.store, m.runner, m.stop, m.stopped = name, store, runner, stop, stopped
	m.mu.Unlock()
	oldStop()
	<-oldStopped
	oldStore.Close()
	m.log.Info("read models rebuilt by another instance swapped in", "generation", name)
	return nil
}

// start runs a runner over store, under the gate if there is one.
func (m *Manager) start(store *Store) (*Runner, context.CancelFunc, chan error) {
	r := NewRunner(store, m.src, m.log)
	if m.gate == nil {
		stop, stopped := m.run(r)
		return r, stop, stopped
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.runGated(ctx, r) }()
	return r, cancel, done
}

// runGated runs r whenever the gate lets it, and follows the stored
// checkpoint meanwhile, until ctx ends or the projection stops (an error
// wrapping ErrStopped, which it returns).
func (m *Manager) runGated(ctx context.Context, r *Runner) error {
	for {
		fctx, unfollow := context.WithCancel(ctx)
		followed := make(chan struct{})
		go func() {
			defer close(followed)
			r.follow(fctx)
		}()
		var runErr error
		err := m.gate(ctx, func(lctx context.Context) error {
			unfollow()
			<-followed
			m.log.Info("projection running here", "projection", Name)
			runErr = r.runResuming(lctx)
			return runErr
		})
		unfollow()
		<-followed
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(runErr, ErrStopped):
			return runErr
		case err != nil:
			m.log.Info("projection no longer runs here; standing by", "projection", Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retryFirst):
		}
	}
}

// run runs r in the background, resuming after passing failures (see
// Runner.runResuming), until the returned stop is called.
func (m *Manager) run(r *Runner) (stop context.CancelFunc, stopped chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.runResuming(ctx) }()
	return cancel, done
}

// NeedsRebuild reports whether the read models in use were upgraded in
// place from an older schema and await a rebuild (see StartStaleRebuild).
func (m *Manager) NeedsRebuild() bool {
	s, _ := m.Current()
	return s.NeedsRebuild()
}

// StartStaleRebuild starts a rebuild in the background (see StartRebuild)
// if the read models in use await one after a schema upgrade; they answer
// queries meanwhile. It reports whether it started one.
func (m *Manager) StartStaleRebuild() (bool, error) {
	if !m.NeedsRebuild() {
		return false, nil
	}
	m.log.Info("the read models were upgraded from an older schema; rebuilding them from the event store in the background while they serve",
		"schema_version", schemaVersion)
	if err := m.StartRebuild(RebuildOptions{}); err != nil {
		return false, err
	}
	return true, nil
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
	if err := opts.check(); err != nil {
		return err
	}
	m.mu.RLock()
	name := m.name
	m.mu.RUnlock()
	next := m.gens.other(name)
	fresh, err := m.openFresh(ctx, next, opts.Restart)
	if err != nil {
		return err
	}
	runner := NewRunner(fresh, m.src, m.log)
	stopReports := reportProgress(ctx, runner, opts)
	// Where the source can read the history in bulk, the fresh read models
	// load it that way first; the runner then follows from where the load
	// ended (and retries what a passing failure interrupted).
	if h, ok := m.src.(History); ok {
		if err := runner.load(ctx, h); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrStopped) {
				stopReports()
				fresh.Close()
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("rebuild: %w", err)
			}
			if !errors.Is(err, errFenced) {
				m.log.Warn("the rebuild's bulk load failed; it continues from its checkpoint through the subscription", "err", err)
			}
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
	// keeps moving meanwhile (and may itself still be catching up), unless
	// it stopped: then the event store is all there is to catch up with.
	if err := runner.WaitCaughtUp(ctx); err != nil {
		return abort(fmt.Errorf("rebuild: %w", err))
	}
	for {
		_, live := m.Current()
		ls := live.Status(ctx)
		if ls.Error != "" && !ls.Resuming {
			break
		}
		if err := runner.WaitFor(ctx, ls.Position); err != nil {
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
	if m.gate != nil {
		// The rebuilt read models are kept current under the gate, like
		// the ones they replace.
		stop()
		<-stopped
		runner, stop, stopped = m.start(fresh)
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

// openFresh opens the generation a rebuild fills: the partial one an
// interrupted rebuild left, to resume it, unless restart discards it or it
// was itself upgraded from an older schema (its rows are not all from the
// events).
func (m *Manager) openFresh(ctx context.Context, name string, restart bool) (*Store, error) {
	if restart {
		if err := m.gens.drop(ctx, name); err != nil {
			return nil, err
		}
	}
	fresh, err := m.gens.open(ctx, name)
	if err != nil || !fresh.NeedsRebuild() {
		return fresh, err
	}
	fresh.Close()
	if err := m.gens.drop(ctx, name); err != nil {
		return nil, err
	}
	return m.gens.open(ctx, name)
}

// Close stops the runner and closes the read models; closing them again
// does nothing.
func (m *Manager) Close() error {
	m.CancelRebuild()
	if m.unwatch != nil {
		m.unwatch()
		<-m.watched
	}
	m.mu.Lock()
	if m.closed {
		// Closed already (a service shut down twice): the runner's result
		// was taken then.
		m.mu.Unlock()
		return nil
	}
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
