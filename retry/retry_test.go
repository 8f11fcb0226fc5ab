package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/retry"
)

func TestWait(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy retry.Policy
		want   []time.Duration // after attempts 0, 1, …
	}{
		{"no wait", retry.Policy{}, []time.Duration{0, 0, 0}},
		{"doubling up to Max", retry.Policy{First: 10 * time.Millisecond, Max: 35 * time.Millisecond},
			[]time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 35 * time.Millisecond, 35 * time.Millisecond}},
		{"Max below First", retry.Policy{First: time.Second, Max: time.Millisecond}, []time.Duration{time.Second, time.Second}},
		{"far attempts do not overflow", retry.Policy{First: time.Millisecond, Max: time.Hour}, []time.Duration{
			time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				if got := tc.policy.Wait(i); got != want {
					t.Errorf("Wait(%d): got %v, want %v", i, got, want)
				}
			}
			if got := tc.policy.Wait(1 << 20); got < 0 || got > max(tc.policy.Max, tc.policy.First) {
				t.Errorf("Wait(1<<20): got %v, want at most %v", got, max(tc.policy.Max, tc.policy.First))
			}
		})
	}
}

func TestWaitJitter(t *testing.T) {
	p := retry.Policy{First: 100 * time.Microsecond, Max: 800 * time.Microsecond, Jitter: true}
	for attempt := range 6 {
		base := min(p.First<<attempt, p.Max)
		for range 200 {
			if w := p.Wait(attempt); w < base/2 || w >= base/2+base {
				t.Fatalf("Wait(%d): got %v, want within [%v, %v)", attempt, w, base/2, base/2+base)
			}
		}
	}
}

func TestDo(t *testing.T) {
	errTransient := errors.New("transient")
	errFatal := errors.New("fatal")
	for _, tc := range []struct {
		name      string
		attempts  int
		failFirst int   // attempts that fail with errTransient before success
		fatalAt   int   // the attempt that fails for good (-1: none)
		wantCalls int   // attempts Do makes
		wantErr   error // nil, errTransient or errFatal
	}{
		{"success at once", 3, 0, -1, 1, nil},
		{"success on the last attempt", 3, 2, -1, 3, nil},
		{"attempts spent", 3, 5, -1, 3, errTransient},
		{"permanent stops at once", 5, 5, 1, 2, errFatal},
		{"no bound until success", 0, 7, -1, 8, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retry.Do(context.Background(), retry.Policy{Attempts: tc.attempts}, func(_ context.Context, attempt int) error {
				if attempt != calls {
					t.Errorf("got attempt %d, want %d", attempt, calls)
				}
				calls++
				switch {
				case attempt == tc.fatalAt:
					return retry.Permanent(errFatal)
				case attempt < tc.failFirst:
					return errTransient
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("got %d attempts and %v, want %d and %v", calls, err, tc.wantCalls, tc.wantErr)
			}
			if tc.wantErr == errFatal && err != errFatal {
				t.Errorf("got %#v, want the permanent error unwrapped", err)
			}
		})
	}
}

// TestDoContext: a context that ends while Do waits ends the retries with
// both the last attempt's error and the context's.
func TestDoContext(t *testing.T) {
	errTransient := errors.New("transient")
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := retry.Do(ctx, retry.Policy{First: time.Hour}, func(context.Context, int) error {
		calls++
		cancel()
		return errTransient
	})
	if calls != 1 || !errors.Is(err, errTransient) || !errors.Is(err, context.Canceled) {
		t.Errorf("got %d attempts and %v, want 1 and an error that is both the attempt's and context.Canceled", calls, err)
	}
	if retry.Permanent(nil) != nil {
		t.Error("Permanent(nil): got an error, want nil")
	}
}
