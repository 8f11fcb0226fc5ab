package storage

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// engineLog sends the storage engine's messages to slog, at most one line
// per kind of message every logEvery (a failing background flush retries
// in a tight loop and would otherwise write thousands of lines a second),
// and turns its fatal errors into a value the writer can recover.
type engineLog struct {
	l       *slog.Logger
	limit   *logLimiter
	fatal   atomic.Pointer[string] // the first fatal message, once there is one
	corrupt atomic.Pointer[string] // the first corruption report, once there is one
}

func newEngineLog(l *slog.Logger) *engineLog {
	return &engineLog{l: l.With("component", "pebble"), limit: newLogLimiter(logEvery)}
}

// logEvery is how often one kind of engine message is logged at most.
const logEvery = 10 * time.Second

func (e *engineLog) Infof(format string, args ...any) {
	e.l.Debug(fmt.Sprintf(format, args...))
}

func (e *engineLog) Errorf(format string, args ...any) {
	if n, ok := e.limit.allow(format); ok {
		e.l.Error(fmt.Sprintf(format, args...), suppressed(n)...)
	}
}

// engineFatal is what Fatalf panics with. The engine calls Fatalf where it
// cannot go on (a failed WAL write or sync on the commit path, a failed
// MANIFEST update) and does not expect it to return: returning would let
// a commit that failed look successful. The writer recovers it around its
// commit and answers the group with the error; the store then refuses
// writes until it is reopened. A Fatalf on one of the engine's own
// background goroutines still ends the process, as nothing above could
// recover it.
type engineFatal struct{ msg string }

func (f engineFatal) Error() string {
	if strings.HasPrefix(f.msg, "pebble: ") {
		return f.msg
	}
	return "pebble: " + f.msg
}

func (e *engineLog) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.fatal.CompareAndSwap(nil, &msg)
	e.l.Error(msg, "fatal", true)
	panic(engineFatal{msg: msg})
}

// eventListener reports the engine's background errors through the rate
// limit and records data corruption instead of treating it as fatal (the
// engine's default): a read of a damaged block then fails with an error
// that names the file, and the process keeps serving what is intact.
func (e *engineLog) eventListener(dir string) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			if n, ok := e.limit.allow("background:" + errKind(err)); ok {
				e.l.Error("storage engine background error", append([]any{"err", firstLine(err)}, suppressed(n)...)...)
			}
		},
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			msg := info.Path + ": " + firstLine(info.Details)
			e.corrupt.CompareAndSwap(nil, &msg)
			if n, ok := e.limit.allow("corruption:" + info.Path); ok {
				e.l.Error("event store data is damaged: reads of the damaged part fail; run `ordo eventstore check --data "+dir+"`",
					append([]any{"file", info.Path, "err", firstLine(info.Details)}, suppressed(n)...)...)
			}
		},
	}
}

// errKind groups errors that differ only in a file name or number, so the
// rate limit treats a retry loop over new file numbers as one message.
func errKind(err error) string {
	s := err.Error()
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, s)
}

func suppressed(n int) []any {
	if n == 0 {
		return nil
	}
	return []any{"suppressed", n}
}

// logLimiter lets one message per key through every interval and counts
// the ones it held back.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	seen  map[string]*limited
}

type limited struct {
	last    time.Time
	dropped int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, seen: make(map[string]*limited)}
}

// allow reports whether a message of key may be logged now, and how many
// were held back since the last one that was.
func (l *logLimiter) allow(key string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	e := l.seen[key]
	if e == nil {
		if len(l.seen) > 1000 {
			clear(l.seen)
		}
		l.seen[key] = &limited{last: now}
		return 0, true
	}
	if now.Sub(e.last) < l.every {
		e.dropped++
		return 0, false
	}
	n := e.dropped
	e.last, e.dropped = now, 0
	return n, true
}
