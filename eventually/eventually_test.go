package eventually_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/eventually"
)

func TestTrueWaitsForTheCondition(t *testing.T) {
	var polls atomic.Int32
	eventually.True(t, time.Minute, "the third poll", func() bool { return polls.Add(1) >= 3 })
	if n := polls.Load(); n != 3 {
		t.Errorf("got %d polls, want 3", n)
	}
}

// recorder is a testing.TB that keeps the failure instead of failing.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r) // as FailNow ends the goroutine
}

// fails runs f, which must fail r, and returns what it failed with.
func fails(tb testing.TB, f func(tb testing.TB)) string {
	tb.Helper()
	r := &recorder{TB: tb}
	func() {
		defer func() {
			if p := recover(); p != nil && p != any(r) {
				panic(p)
			}
		}()
		f(r)
	}()
	if r.msg == "" {
		tb.Fatal("got no failure, want one")
	}
	return r.msg
}

func TestFailureSaysWhat(t *testing.T) {
	msg := fails(t, func(tb testing.TB) {
		eventually.True(tb, 50*time.Millisecond, "pigs to fly", func() bool { return false })
	})
	if !strings.Contains(msg, "pigs to fly") || strings.Contains(msg, "not yet") {
		t.Errorf("got %q, want it to name what it waited for and nothing else", msg)
	}
	msg = fails(t, func(tb testing.TB) {
		eventually.NoError(tb, 50*time.Millisecond, "the server", func() error { return errors.New("connection refused") })
	})
	if !strings.Contains(msg, "the server") || !strings.Contains(msg, "connection refused") {
		t.Errorf("got %q, want what it waited for and the last error", msg)
	}
}
