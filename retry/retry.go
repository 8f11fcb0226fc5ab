// Package retry is the one way the module retries an operation that
// failed for a reason that may pass: a Policy says how many attempts and
// how long to wait between them, and Do runs them under a context.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy is how an operation is retried. The zero Policy retries at once
// and without end, until the context ends.
type Policy struct {
	// Attempts bounds the attempts, the first included; 0 means no bound
	// (the context ends the retries).
	Attempts int
	// First is the wait after the first failed attempt; each later wait
	// doubles it, up to Max. 0: no wait at all.
	First time.Duration
	// Max caps a wait; 0 means First is never exceeded.
	Max time.Duration
	// Jitter draws each wait at random from [w/2, 3w/2), so callers that
	// failed together (writers racing on one stream) do not collide again.
	Jitter bool
}

// Wait is the pause after failed attempt number attempt (0 for the first).
func (p Policy) Wait(attempt int) time.Duration {
	if p.First <= 0 {
		return 0
	}
	limit := max(p.Max, p.First)
	w := p.First
	for i := 0; i < attempt && w < limit; i++ {
		w *= 2
	}
	w = min(w, limit)
	if p.Jitter {
		w = w/2 + rand.N(w)
	}
	return w
}

// permanent marks an error the operation must not be retried after.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Do returns it (unwrapped) at once instead of
// retrying. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Do calls op with the attempt's number (0 first) until it returns nil, an
// error wrapped with Permanent, or the policy's attempts are spent, waiting
// between attempts as the policy says. It returns nil, the permanent error
// unwrapped, or the last attempt's error. If ctx ends while Do waits, it
// returns the last attempt's error wrapped with ctx's, so both errors.Is
// tests hold; op gets ctx and decides itself whether to stop early.
func Do(ctx context.Context, p Policy, op func(ctx context.Context, attempt int) error) error {
	for attempt := 0; ; attempt++ {
		err := op(ctx, attempt)
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return perm.err
		}
		if p.Attempts > 0 && attempt+1 >= p.Attempts {
			return err
		}
		if werr := sleep(ctx, p.Wait(attempt)); werr != nil {
			return errors.Join(err, werr)
		}
	}
}

// sleep waits d, or until ctx ends (ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
