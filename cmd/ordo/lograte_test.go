package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimitedHandler(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	log := slog.New(newLimitedHandler(slog.NewTextHandler(&buf, nil), 10*time.Second, 3, func() time.Time { return now }))
	for i := range 1000 {
		log.Error("command failed", "n", i)
	}
	log.With("component", "x").Info("something else")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines for 1000 identical messages and one other, want 3 + 1:\n%s", len(lines), buf.String())
	}
	now = now.Add(11 * time.Second)
	buf.Reset()
	log.Error("command failed", "n", 1000)
	if got := buf.String(); !strings.Contains(got, "suppressed=997") || !strings.Contains(got, "n=1000") {
		t.Fatalf("the first message of the next window: %q, want it to count the 997 dropped", got)
	}
}
