package projections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// RebuildOptions tune Manager.Rebuild.
type RebuildOptions struct {
	// From must be zero: a rebuild replays the whole history. Read models
	// built from a later position would lack every order placed before
	// it, and swapping them in would lose those orders from every query,
	// so Rebuild and StartRebuild refuse any other value.
	From uint64
	// Restart discards a partial rebuild instead of resuming it.
	Restart bool
	// Progress, if set, is called about every Interval while the rebuild
	// catches up, and once more when it has caught up.
	Progress func(RebuildProgress)
	Interval time.Duration // default 500ms
}

// RebuildProgress is how far a rebuild has come.
type RebuildProgress struct {
	Running   bool          `json:"running"`
	Position  uint64        `json:"position"`
	Head      uint64        `json:"head"`
	Events    int64         `json:"events_applied"`
	Elapsed   time.Duration `json:"-"`
	Seconds   float64       `json:"elapsed_seconds"`
	PerSecond float64       `json:"events_per_second"`
	// ETASeconds estimates the time left from the rate of positions so far;
	// zero when unknown.
	ETASeconds float64 `json:"eta_seconds"`
	Done       bool    `json:"done"`
	Error      string  `json:"error,omitempty"`
}

// check refuses options no rebuild should run with.
func (o RebuildOptions) check() error {
	if o.From != 0 {
		return &InvalidQueryError{"from", fmt.Sprintf("a rebuild replays the whole history: read models built after position %d "+
			"would lack every order placed before it; leave from out (or 0)", o.From)}
	}
	return nil
}

// reportProgress calls opts.Progress every interval until the returned
// function is called, which also reports one last time.
func reportProgress(ctx context.Context, r *Runner, opts RebuildOptions) (stop func()) {
	if opts.Progress == nil {
		return func() {}
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	start := time.Now()
	startPos, startEvents := uint64(0), int64(-1)
	snapshot := func() RebuildProgress {
		st := r.Status(context.WithoutCancel(ctx))
		if startEvents < 0 {
			startPos, startEvents = st.Position, st.Events
		}
		p := RebuildProgress{Running: true, Position: st.Position, Head: max(st.Head, st.Position), Events: st.Events,
			Elapsed: time.Since(start), Error: st.Error}
		p.Seconds = p.Elapsed.Seconds()
		if p.Seconds > 0 {
			p.PerSecond = float64(st.Events-startEvents) / p.Seconds
			if moved := float64(st.Position - startPos); moved > 0 && p.Head > p.Position {
				p.ETASeconds = float64(p.Head-p.Position) / (moved / p.Seconds)
			}
		}
		return p
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		opts.Progress(snapshot())
		for {
			select {
			case <-done:
				return
			case <-t.C:
				opts.Progress(snapshot())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			opts.Progress(snapshot())
		})
	}
}

// removeDatabase deletes a SQLite database and its journal files.
func removeDatabase(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

// ErrRebuildRunning: a rebuild is already under way; wait for it or cancel it.
var ErrRebuildRunning = errors.New("a rebuild is already running")

// rebuildJob is the one background rebuild a Manager runs for its API.
type rebuildJob struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	last   RebuildProgress
	done   chan struct{}
}

// StartRebuild starts Rebuild in the background, for an operator's request
// to the running service; RebuildStatus follows it and CancelRebuild stops
// it (resumably). It fails with ErrRebuildRunning while one runs, and with
// an *InvalidQueryError for options it refuses.
func (m *Manager) StartRebuild(opts RebuildOptions) error {
	if err := opts.check(); err != nil {
		return err
	}
	j := &m.job
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cancel != nil {
		return ErrRebuildRunning
	}
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel, j.done = cancel, make(chan struct{})
	j.last = RebuildProgress{Running: true}
	user := opts.Progress
	opts.Progress = func(p RebuildProgress) {
		j.mu.Lock()
		j.last = p
		j.mu.Unlock()
		if user != nil {
			user(p)
		}
	}
	go func() {
		err := m.Rebuild(ctx, opts)
		j.mu.Lock()
		defer j.mu.Unlock()
		j.last.Running, j.last.Done = false, err == nil
		if err != nil {
			j.last.Error = err.Error()
			if errors.Is(err, context.Canceled) {
				j.last.Error = "cancelled; start the rebuild again to resume it"
			}
		}
		j.last.ETASeconds = 0
		cancel()
		close(j.done)
		j.cancel = nil
	}()
	return nil
}

// RebuildStatus reports the background rebuild: running, or how the last
// one ended; ok is false if none was started since the service started.
func (m *Manager) RebuildStatus() (p RebuildProgress, ok bool) {
	j := &m.job
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.last, j.done != nil
}

// CancelRebuild stops the background rebuild, if any, and waits for it to
// end. The live read models are untouched; a new rebuild resumes it.
func (m *Manager) CancelRebuild() {
	j := &m.job
	j.mu.Lock()
	cancel, done := j.cancel, j.done
	j.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
