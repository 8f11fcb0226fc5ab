// Package logbuf is a log destination that tests read while the code
// under test writes to it from several goroutines. Only tests import it.
package logbuf

import (
	"strings"
	"sync"
)

// Buffer collects what is written to it; it is safe for concurrent use,
// and its zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p; it never fails.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines is how many lines were written so far.
func (l *Buffer) Lines() int { return strings.Count(l.String(), "\n") }

// Tail is the last n lines, for failure messages.
func (l *Buffer) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
