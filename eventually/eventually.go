// Package eventually is the tests' one way to wait for something that
// happens in the background: poll a condition until it holds or a time
// limit passes, and fail the test saying what never happened. Tests wait
// for conditions instead of sleeping and hoping, and give generous limits,
// since a loaded machine is slow but not wrong. Only tests import it.
package eventually

import (
	"testing"
	"time"
)

// interval is the pause between two polls: short next to any limit, long
// enough not to busy the machine the condition waits on.
const interval = 20 * time.Millisecond

// True polls cond until it returns true; if it has not within the limit,
// it fails tb with what it waited for. Call it from the test's goroutine.
func True(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	NoError(tb, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// NoError polls cond until it returns nil; if it has not within the
// limit, it fails tb with what it waited for and cond's last error. Call
// it from the test's goroutine.
func NoError(tb testing.TB, within time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if err == errNotYet {
				tb.Fatalf("waited %v for %s", within, what)
			}
			tb.Fatalf("waited %v for %s: %v", within, what, err)
		}
		time.Sleep(interval)
	}
}

// notYet is True's condition not holding yet.
type notYet struct{}

func (notYet) Error() string { return "not yet" }

var errNotYet error = notYet{}
