package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The service's long-running parts (the command workers, the saga, the
// HTTP server, …) run as one supervised group, so that a part that stops
// is noticed at once rather than at shutdown. A part that fails is started
// again after a pause that grows from restartFirst to restartMax; one that
// cannot go on (its error wraps errCannotGoOn, or it keeps failing for
// Config.GiveUpAfter while NATS and the event store both answer, so the
// cause is its own and not an outage) stops the whole service with the
// cause: `ordo serve` then exits non-zero and the supervisor outside (systemd,
// Kubernetes, the container runtime) starts it afresh. /readyz names every
// part and whether it is up.

// restartFirst and restartMax bound the pause before a failed part is
// started again.
const (
	restartFirst = 500 * time.Millisecond
	restartMax   = 5 * time.Second
	// restartCalm: a part that ran this long before failing starts again
	// after restartFirst, not after the pause its earlier failures reached.
	restartCalm = time.Minute
)

// errCannotGoOn marks a part's error as final: restarting the part inside
// the process cannot help, so the service stops with it.
var errCannotGoOn = errors.New("cannot go on")

// cannotGoOn wraps err so that the supervisor stops the service with it.
func cannotGoOn(err error) error { return fmt.Errorf("%w: %w", errCannotGoOn, err) }

// Part states as /readyz shows them; a part that is down shows "down: " and
// the cause.
const (
	stateUp       = "up"
	stateStarting = "starting"
	stateStandby  = "standby" // waiting for the lease another instance holds
	stateStopped  = "stopped"
)

// supervisor runs the parts and records their states.
type supervisor struct {
	log    *slog.Logger
	giveUp time.Duration
	// healthy says whether NATS and the event store answer; a part failing
	// meanwhile fails because of them, and is never given up on.
	healthy func(ctx context.Context) bool

	mu     sync.Mutex
	states map[string]string
	failed chan struct{} // closed once a part cannot go on
	cause  error
}

func newSupervisor(log *slog.Logger, giveUp time.Duration, healthy func(ctx context.Context) bool) *supervisor {
	return &supervisor{log: log, giveUp: giveUp, healthy: healthy, states: map[string]string{}, failed: make(chan struct{})}
}

// set records a part's state.
func (s *supervisor) set(name, state string) {
	s.mu.Lock()
	s.states[name] = state
	s.mu.Unlock()
}

// snapshot returns every part's state.
func (s *supervisor) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.states))
	for k, v := range s.states {
		out[k] = v
	}
	return out
}

// fail stops the service: the part name cannot go on because of err. The
// first cause is kept.
func (s *supervisor) fail(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[name] = "down: " + err.Error()
	if s.cause != nil {
		return
	}
	s.cause = fmt.Errorf("%s: %w", name, err)
	s.log.Error("a part of the service cannot go on; stopping the service", "part", name, "err", err)
	close(s.failed)
}

// Failed is closed once a part cannot go on; Err then says which and why.
func (s *supervisor) Failed() <-chan struct{} { return s.failed }

// Err is why the service must stop, nil while every part can go on.
func (s *supervisor) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// partRun runs a part until ctx ends or it is stopped on purpose (returning
// nil), or until it fails.
// It calls up once the part works (its consumer is pulling, its lease is
// held, …); it may set other states meanwhile through set.
type partRun func(ctx context.Context, up func()) error

// handle is a running part.
type handle struct {
	up    chan struct{} // closed the first time the part is up
	first chan error    // receives the first attempt's error if it failed before being up
	stop  func()        // stops the part and waits for it
}

// run starts a part under supervision.
func (s *supervisor) run(name string, fn partRun) *handle {
	ctx, cancel := context.WithCancel(context.Background())
	h := &handle{up: make(chan struct{}), first: make(chan error, 1)}
	done := make(chan struct{})
	h.stop = func() {
		cancel()
		<-done
	}
	s.set(name, stateStarting)
	go func() {
		defer close(done)
		s.loop(ctx, name, fn, h)
	}()
	return h
}

func (s *supervisor) loop(ctx context.Context, name string, fn partRun, h *handle) {
	var upOnce sync.Once
	pause := restartFirst
	var failingSince time.Time // since when the part has failed to stay up
	for attempt := 0; ; attempt++ {
		started := time.Now()
		wasUp := false
		err := fn(ctx, func() {
			wasUp = true
			s.set(name, stateUp)
			upOnce.Do(func() { close(h.up) })
		})
		if ctx.Err() != nil || err == nil { // stopped on purpose (the HTTP server by Shutdown)
			s.set(name, stateStopped)
			return
		}
		if attempt == 0 && !wasUp {
			h.first <- err
		}
		if errors.Is(err, errCannotGoOn) {
			s.fail(name, err)
			return
		}
		s.set(name, "down: "+err.Error())
		if wasUp || failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(started) > restartCalm {
			pause = restartFirst
		}
		if !s.healthy(ctx) {
			failingSince = time.Now() // an outage, not the part's own failure
		} else if s.giveUp > 0 && time.Since(failingSince) >= s.giveUp {
			s.fail(name, fmt.Errorf("failing for %v while NATS and the event store answer: %w", time.Since(failingSince).Round(time.Second), err))
			return
		}
		s.log.Error("a part of the service stopped; restarting it", "part", name, "err", err, "in", pause)
		select {
		case <-ctx.Done():
			s.set(name, stateStopped)
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, restartMax)
	}
}

// waitUp waits until a part first works, or fails before it did, or ctx
// ends: Start fails when a part cannot start at all.
func waitUp(ctx context.Context, name string, h *handle) error {
	select {
	case <-h.up:
		return nil
	case err := <-h.first:
		return fmt.Errorf("%s: %w", name, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitUpOrStandby is waitUp for a leased part: on an instance that stands
// by, the part is as started as it gets until the lease passes to it.
func (s *supervisor) waitUpOrStandby(ctx context.Context, part, what string, h *handle) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.up:
			return nil
		case err := <-h.first:
			return fmt.Errorf("%s: %w", what, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			s.mu.Lock()
			st := s.states[part]
			s.mu.Unlock()
			if strings.HasPrefix(st, stateStandby) {
				return nil
			}
		}
	}
}
