package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"

	ordonats "github.com/ordo-dev/ordo/nats"
)

// The parts /readyz names.
const (
	partNATS        = "nats"
	partEventStore  = "eventstore"
	partWorkers     = "workers"
	partSaga        = "saga"
	partProjections = "projections"
	partHTTP        = "http"
	partTimers      = "timers"
	partStock       = "stock"
)

// startSupervisor starts supervising, once NATS and the event store are
// connected: a part failing while both answer fails by itself.
func (s *Service) startSupervisor(cfg Config) {
	s.sup = newSupervisor(s.log, cfg.GiveUpAfter, func(ctx context.Context) bool {
		if !s.nc.IsConnected() {
			return false
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := s.store.Head(hctx)
		return err == nil
	})
	// NATS is not restarted inside: the client reconnects to an external
	// server by itself for as long as it takes; the embedded server, or a
	// connection closed for good, cannot come back in this process.
	if s.natsSrv != nil {
		go func() {
			s.natsSrv.Server().WaitForShutdown()
			if !s.closing.Load() {
				s.sup.fail(partNATS, errors.New("the embedded NATS server stopped"))
			}
		}()
	}
	s.nc.SetClosedHandler(func(nc *natsgo.Conn) {
		if !s.closing.Load() {
			s.sup.fail(partNATS, fmt.Errorf("the NATS connection closed for good: %v", nc.LastError()))
		}
	})
}

// Failed is closed when a part of the service cannot go on; Err then says
// which and why, and the service should be shut down.
func (s *Service) Failed() <-chan struct{} { return s.sup.Failed() }

// Err is why the service must stop (see Failed), nil while it can go on.
func (s *Service) Err() error { return s.sup.Err() }

// startWorkers runs the command workers as a part: a worker whose
// consumption ends (its consumer or stream deleted, …) is replaced by a new
// one, which sets the stream and consumer up again.
func (s *Service) startWorkers(ctx context.Context, cfg Config, exec ordonats.Executor) error {
	s.workers = s.sup.run(partWorkers, func(ctx context.Context, up func()) error {
		w, err := ordonats.NewWorker(s.nc, exec, cfg.Commands)
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		select {
		case <-w.Ready():
			up()
		case err := <-done:
			return err
		}
		return <-done
	})
	return waitUp(ctx, "command workers", s.workers)
}

// serveHTTP serves until Shutdown; a listener that fails otherwise cannot
// be taken back (another process may hold the port by now).
func (s *Service) serveHTTP(lis net.Listener) error {
	if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return cannotGoOn(fmt.Errorf("the HTTP server stopped: %w", err))
	}
	return nil
}

// stopWithin runs stop, giving up on waiting when ctx ends.
func stopWithin(ctx context.Context, what string, stop func()) error {
	done := make(chan struct{})
	go func() {
		stop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// Readiness is the body of GET /readyz.
type Readiness struct {
	Ready bool              `json:"ready"`
	Parts map[string]string `json:"parts"` // part → "up", "standby: " and the holder, "starting", or "down: " and the cause
}

// Readiness reports every part's state; the service is ready when each is
// up (or on standby: another instance holds its lease).
func (s *Service) Readiness(ctx context.Context) Readiness {
	parts := s.sup.snapshot()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if !strings.HasPrefix(parts[partNATS], "down") { // a server or connection gone for good stays down
		parts[partNATS] = stateUp
		if !s.nc.IsConnected() {
			parts[partNATS] = "down: not connected to NATS at " + s.natsURL + " (" + s.nc.Status().String() + "); reconnecting"
		}
	}
	parts[partEventStore] = stateUp
	if _, err := s.store.Head(ctx); err != nil {
		parts[partEventStore] = "down: the event store does not answer: " + err.Error()
	}
	if s.reads != nil {
		_, r := s.reads.Current()
		parts[partProjections] = s.projectionsState(r.Status(ctx))
	}
	parts[partTimers] = s.timersState(ctx)
	ready := true
	for _, st := range parts {
		if st != stateUp && !strings.HasPrefix(st, stateStandby) {
			ready = false
		}
	}
	return Readiness{Ready: ready, Parts: parts}
}

// timersState: the saga keeps the payment timers and sends the due ones'
// ExpirePayment into the command stream; they work while the stream exists.
func (s *Service) timersState(ctx context.Context) string {
	if _, err := mustJS(s.nc).Stream(ctx, ordonats.StreamCommands); err != nil {
		return "down: the command stream that takes the payment timeouts: " + err.Error()
	}
	return stateUp
}

// readiness serves GET /readyz: 200 when every part is up, else 503.
func (s *Service) readiness(w http.ResponseWriter, r *http.Request) {
	rd := s.Readiness(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rd)
}
