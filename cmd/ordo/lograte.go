package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// limitedHandler keeps a long-running command's log readable during an
// outage: every part logs its own failures (each command, each saga step,
// each retry), which under load and a full disk or a lost store came to
// thousands of lines a second. It passes at most burst records with the
// same level and message every interval; the next one let through carries
// how many were dropped ("suppressed").
type limitedHandler struct {
	next slog.Handler
	lim  *recordLimiter
}

// newLimitedHandler wraps next.
func newLimitedHandler(next slog.Handler, every time.Duration, burst int, now func() time.Time) slog.Handler {
	return limitedHandler{next: next, lim: &recordLimiter{every: every, burst: burst, now: now, seen: map[recordKey]*recordWindow{}}}
}

// Log limits of ordo serve and ordo eventstore serve.
const (
	logEvery = 10 * time.Second
	logBurst = 5
)

func (h limitedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h limitedHandler) Handle(ctx context.Context, r slog.Record) error {
	dropped, ok := h.lim.allow(recordKey{r.Level, r.Message})
	if !ok {
		return nil
	}
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", dropped))
	}
	return h.next.Handle(ctx, r)
}

func (h limitedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return limitedHandler{next: h.next.WithAttrs(attrs), lim: h.lim}
}

func (h limitedHandler) WithGroup(name string) slog.Handler {
	return limitedHandler{next: h.next.WithGroup(name), lim: h.lim}
}

type recordKey struct {
	level slog.Level
	msg   string
}

type recordWindow struct {
	start   time.Time
	passed  int
	dropped int
}

// recordLimiter counts records per key in fixed windows of every.
type recordLimiter struct {
	every time.Duration
	burst int
	now   func() time.Time
	mu    sync.Mutex
	seen  map[recordKey]*recordWindow
}

// allow reports whether a record of key may pass, and how many of its
// kind were dropped since the last one that passed.
func (l *recordLimiter) allow(k recordKey) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.seen[k]
	if w == nil {
		if len(l.seen) >= 10_000 {
			clear(l.seen) // messages with changing text must not grow the map for ever
		}
		w = &recordWindow{start: now}
		l.seen[k] = w
	}
	if now.Sub(w.start) >= l.every {
		w.start, w.passed = now, 0
	}
	if w.passed >= l.burst {
		w.dropped++
		return 0, false
	}
	w.passed++
	dropped := w.dropped
	w.dropped = 0
	return dropped, true
}
