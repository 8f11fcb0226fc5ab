package nats

import (
	"sync"
	"time"
)

// logLimit lets through a burst of log lines per interval and counts the
// ones it holds back, so a flood of bad commands cannot flood the log: an
// operator still sees that dead letters happen, what they look like, and
// how many there were.
type logLimit struct {
	every time.Duration
	burst int

	mu         sync.Mutex
	start      time.Time // of the current interval
	n          int       // lines let through in it
	suppressed int       // lines held back since the last one let through
}

// allow reports whether to log a line now and how many were held back
// before it (to be reported with it).
func (l *logLimit) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.every {
		l.start, l.n = now, 0
	}
	if l.n >= l.burst {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
