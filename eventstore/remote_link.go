package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The official client v4.2.0 gives up on a server it cannot reach: after
// its discovery attempts fail it closes itself for good ("connection is
// already closed" on every later call), and callers that were queued
// behind that discovery, or that report a broken connection while it runs,
// block forever on the client's internal channel (esdb/impl.go:84-98,
// 72-79, 216-226), so an outage of about a second would break the service
// for good.
//
// link keeps the service independent of that. Every call runs on a
// goroutine of its own, so the caller can stop waiting; the first call
// that finds the store unreachable retires the client, and later calls
// fail at once with ErrUnavailable instead of queueing behind it; one
// background probe, alone in a fresh client, tries the store every
// fraction of a second and, once it answers, installs that client for
// everyone. A retired client is closed once no call is inside it (closing
// it earlier would panic a goroutine blocked on its channel). The outage
// is logged when it starts, once per interval while it lasts, and when it
// ends.
type link struct {
	url string
	cfg esdb.Configuration // of the probes' clients
	log *slog.Logger

	mu       sync.Mutex
	cur      *clientRef // nil while the store is unreachable
	probing  bool
	closed   bool
	closedCh chan struct{}
	outage   outage
}

// clientRef is one official client and the calls inside it.
type clientRef struct {
	c        *esdb.Client
	inFlight int  // guarded by link.mu
	retired  bool // guarded by link.mu
	lost     chan struct{}
}

// outage is what the log says about the current outage.
type outage struct {
	since, lastLog time.Time
	refused        int // calls answered ErrUnavailable at once
	cause          error
}

const (
	// outageLogEvery is how often a lasting outage is logged again.
	outageLogEvery = 10 * time.Second
	// probeMaxPause bounds the pause between probes, so the first call
	// after the store returns succeeds within about that much.
	probeMaxPause = 250 * time.Millisecond
	// probeTimeout bounds one probe's read.
	probeTimeout = 5 * time.Second
)

func newLink(url string, cfg esdb.Configuration, first *esdb.Client, log *slog.Logger) *link {
	// One attempt, and no sleep after it: the probe paces itself.
	cfg.MaxDiscoverAttempts, cfg.DiscoveryInterval = 1, 0
	return &link{url: url, cfg: cfg, log: log, cur: &clientRef{c: first, lost: make(chan struct{})}, closedCh: make(chan struct{})}
}

// acquire returns the client calls use, counting the caller in; release
// counts it out. While the store is unreachable it returns ErrUnavailable.
func (l *link) acquire() (*clientRef, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, fmt.Errorf("%w: the connection to %s is closed", ErrUnavailable, l.url)
	case l.cur == nil:
		l.outage.refused++
		l.logOutage()
		return nil, fmt.Errorf("%w: %s does not answer (since %s): %v", ErrUnavailable, l.url,
			l.outage.since.Format(time.RFC3339), l.outage.cause)
	}
	l.cur.inFlight++
	return l.cur, nil
}

func (l *link) release(r *clientRef) {
	l.mu.Lock()
	r.inFlight--
	closeNow := r.retired && r.inFlight == 0
	l.mu.Unlock()
	if closeNow {
		r.c.Close()
	}
}

// failed retires r if err says the store cannot be reached, and starts
// the probe.
func (l *link) failed(r *clientRef, err error) {
	if !unreachable(err) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != r || l.closed {
		return
	}
	l.retire(r)
	l.cur = nil
	now := time.Now()
	l.outage = outage{since: now, lastLog: now, cause: err}
	l.log.Warn("the event store does not answer; operations fail with unavailable until it does",
		"url", l.url, "err", err)
	if !l.probing {
		l.probing = true
		go l.probe()
	}
}

// retire marks r as no longer used; it is closed once no call is in it.
// l.mu is held.
func (l *link) retire(r *clientRef) {
	r.retired = true
	close(r.lost)
	if r.inFlight == 0 {
		go r.c.Close()
	}
}

// logOutage logs a lasting outage once per interval. l.mu is held.
func (l *link) logOutage() {
	if time.Since(l.outage.lastLog) < outageLogEvery {
		return
	}
	l.outage.lastLog = time.Now()
	l.log.Warn("the event store still does not answer", "url", l.url, "for", time.Since(l.outage.since).Round(time.Second),
		"refused", l.outage.refused, "err", l.outage.cause)
}

// probe tries the store with fresh clients until one answers, installs it
// and returns; or returns when the link is closed.
func (l *link) probe() {
	pause := 50 * time.Millisecond
	for {
		c, err := esdb.NewClient(&l.cfg)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			err = ping(ctx, c)
			cancel()
			if err == nil && l.install(c) {
				return
			}
			c.Close() // alone in it: nothing can be blocked inside
		}
		l.mu.Lock()
		if l.closed {
			l.probing = false
			l.mu.Unlock()
			return
		}
		l.outage.cause = err
		l.logOutage()
		l.mu.Unlock()
		select {
		case <-time.After(pause):
		case <-l.closedCh:
		}
		pause = min(2*pause, probeMaxPause)
	}
}

// install makes c the client calls use; false when the link was closed.
func (l *link) install(c *esdb.Client) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.probing = false
	if l.closed {
		return false
	}
	l.cur = &clientRef{c: c, lost: make(chan struct{})}
	l.log.Info("the event store answers again", "url", l.url, "after", time.Since(l.outage.since).Round(time.Millisecond),
		"refused", l.outage.refused)
	return true
}

// ping reads the head of $all: the cheapest call that needs a working
// connection.
func ping(ctx context.Context, c *esdb.Client) error {
	rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1)
	if err != nil {
		return err
	}
	defer rs.Close()
	for {
		if _, err := rs.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// close retires the client in use and stops the probe.
func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.closedCh)
	if l.cur != nil {
		l.retire(l.cur)
		l.cur = nil
	}
}

// unreachable reports whether err means the store could not be reached
// (as opposed to an answer, or a timeout of a slow one).
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var ee *esdb.Error
	if errors.As(err, &ee) && (ee.Code() == esdb.ErrorCodeConnectionClosed || ee.Code() == esdb.ErrorUnavailable) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if st, ok := status.FromError(e); ok && st.Code() == codes.Unavailable {
			return true
		}
	}
	return false
}

// call runs op on a client on its own goroutine and waits for it, for
// ctx's end, or for the client to be found unreachable by another call,
// whichever comes first. A caller that stops waiting cancels op's context;
// keep, if not nil, disposes of a result op delivers after that. Without
// keep, op's context ends when call returns; with it, op's result owns
// the context (a subscription lives on after the call that opened it).
func call[T any](ctx context.Context, l *link, op func(ctx context.Context, c *esdb.Client) (T, error), keep func(T)) (T, error) {
	var zero T
	r, err := l.acquire()
	if err != nil {
		return zero, err
	}
	opCtx, cancel := ctx, context.CancelFunc(func() {})
	if keep == nil {
		opCtx, cancel = context.WithCancel(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := op(opCtx, r.c)
		l.failed(r, err)
		l.release(r)
		done <- result{v, err}
	}()
	select {
	case res := <-done:
		cancel()
		return res.v, res.err
	case <-r.lost:
		err = fmt.Errorf("%w: the connection to %s was lost", ErrUnavailable, l.url)
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	go func() {
		if res := <-done; keep != nil && res.err == nil {
			keep(res.v)
		}
	}()
	return zero, err
}
