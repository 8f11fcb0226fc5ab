package serve

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestNATSOutageLoggedOncePerInterval: an outage of a minute with a
// reconnection attempt every 100 ms gives one line when it starts, one
// per interval while it lasts, and one when NATS is back.
func TestNATSOutageLoggedOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	o := newNATSOutage(slog.New(slog.NewTextHandler(&buf, nil)))
	o.now = func() time.Time { return now }
	refused := errors.New("connection refused")
	o.down(refused)
	o.down(refused) // a second report of the same outage
	for range 600 {
		now = now.Add(100 * time.Millisecond)
		o.failed(refused)
	}
	o.up("nats://127.0.0.1:4222")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1+6+1 {
		t.Fatalf("got %d lines for a minute's outage, want 8 (start, 6 × every 10 s, end):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "lost the connection") || !strings.Contains(lines[7], "answers again") || !strings.Contains(lines[7], "attempts=600") {
		t.Fatalf("first and last lines: %q, %q", lines[0], lines[7])
	}
	buf.Reset()
	o.up("nats://127.0.0.1:4222") // connected already: nothing to say
	if buf.Len() != 0 {
		t.Fatalf("logged %q while connected", buf.String())
	}
}
