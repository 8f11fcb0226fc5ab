package projections

import (
	"context"
	"errors"
	"time"
)

// The pace of a failing projection's attempts: the first retry after
// retryFirst, each next one after twice the pause, at most retryMax; and
// while it keeps failing, one log line per retryLogEvery, not one per
// attempt (a full disk fails every attempt for as long as it is full).
var (
	retryFirst    = 100 * time.Millisecond
	retryMax      = 10 * time.Second
	retryLogEvery = time.Minute
)

// runResuming runs the projection until ctx ends or it stops (an error
// wrapping ErrStopped, which it returns). After any other failure — a lost
// subscription, a read-model write that failed (a full disk, a dropped
// PostgreSQL connection), an event store that does not answer — it runs
// it again from its checkpoint after a pause, so the read models resume by
// themselves once the cause goes away.
func (r *Runner) runResuming(ctx context.Context) error {
	for {
		err := r.Run(ctx)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrStopped) {
			return err
		}
		pause := r.retryLater(err)
		select {
		case <-ctx.Done():
			r.setStatus(func(s *Status) { s.NextAttemptAt = nil })
			return nil
		case <-time.After(pause):
		}
	}
}

// retryLater records a failed attempt and returns the pause before the
// next one. It logs the first failure of a run of them, and then at most
// once per retryLogEvery.
func (r *Runner) retryLater(err error) time.Duration {
	now := time.Now()
	r.mu.Lock()
	attempts := r.status.FailedAttempts
	pause := retryMax
	if attempts < 20 {
		pause = min(retryFirst<<max(attempts-1, 0), retryMax)
	}
	next := now.Add(pause)
	r.status.NextAttemptAt = &next
	first := r.failing.IsZero()
	if first {
		r.failing = now
	}
	due := first || now.Sub(r.loggedAt) >= retryLogEvery
	if due {
		r.loggedAt = now
	}
	since := r.failing
	r.mu.Unlock()
	switch {
	case first:
		r.log.Warn("projection failed; it tries again by itself, with growing pauses", "projection", Name, "err", err, "retry_in", pause)
	case due:
		r.log.Warn("projection still failing; it keeps trying", "projection", Name, "err", err, "failed_attempts", attempts,
			"failing_for", now.Sub(since).Round(time.Second), "retry_in", pause)
	}
	return pause
}

// recovered clears the failure shown in the status once an attempt got
// through (a batch committed, or the subscription caught up), and logs
// that the projection resumed.
func (r *Runner) recovered() {
	r.mu.Lock()
	attempts, since := r.status.FailedAttempts, r.failing
	r.mu.Unlock()
	if attempts == 0 {
		return
	}
	r.setStatus(func(s *Status) { s.Error, s.Resuming, s.FailedAttempts, s.NextAttemptAt = "", false, 0, nil })
	r.mu.Lock()
	r.failing, r.loggedAt = time.Time{}, time.Time{}
	r.mu.Unlock()
	r.log.Info("projection resumed", "projection", Name, "failed_attempts", attempts, "failing_for", time.Since(since).Round(time.Millisecond))
}
