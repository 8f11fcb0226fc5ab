package commands

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestTimerSchedule: the schedule keeps one timer per order (a new start
// replaces it), stop removes it, and the checkpoint position is the
// oldest pending timer's, whatever order they were started and stopped in.
func TestTimerSchedule(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	type op struct {
		kind  string // "start", "stop"
		order string
		pos   uint64
		in    time.Duration // deadline: at + in
	}
	tests := []struct {
		name       string
		ops        []op
		wantN      int
		wantOldest uint64 // 0: none pending
		wantNext   string
	}{
		{"none", nil, 0, 0, ""},
		{"one", []op{{"start", "a", 10, time.Minute}}, 1, 10, "a"},
		{"by deadline, not by start", []op{{"start", "a", 10, 2 * time.Minute}, {"start", "b", 20, time.Minute}}, 2, 10, "b"},
		{"a start replaces", []op{{"start", "a", 10, time.Minute}, {"start", "b", 20, 2 * time.Minute}, {"start", "a", 30, 3 * time.Minute}}, 2, 20, "b"},
		{"stop the oldest", []op{{"start", "a", 10, time.Minute}, {"start", "b", 20, 2 * time.Minute}, {"stop", "a", 0, 0}}, 1, 20, "b"},
		{"stop all", []op{{"start", "a", 10, time.Minute}, {"stop", "a", 0, 0}, {"stop", "never-started", 0, 0}}, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTimerSchedule()
			for _, o := range tt.ops {
				if o.kind == "start" {
					ts.start(o.order, at.Add(o.in), o.pos, "")
				} else {
					ts.stop(o.order)
				}
			}
			if n := ts.pending(); n != tt.wantN {
				t.Errorf("pending() = %d, want %d", n, tt.wantN)
			}
			low, ok := ts.oldest()
			if ok != (tt.wantOldest != 0) || low != tt.wantOldest {
				t.Errorf("oldest() = %d, %t, want %d", low, ok, tt.wantOldest)
			}
			next, ok := ts.next()
			if ok != (tt.wantNext != "") || next.orderID != tt.wantNext {
				t.Errorf("next() = %q, %t, want %q", next.orderID, ok, tt.wantNext)
			}
		})
	}
}

// TestTimerScheduleFires: due timers fire in deadline order, a timer whose
// sending failed is sent again, stopped and future timers never fire,
// and a fired timer is no longer pending.
func TestTimerScheduleFires(t *testing.T) {
	now := time.Now()
	ts := newTimerSchedule()
	ts.start("late", now.Add(-time.Second), 3, "")
	ts.start("early", now.Add(-time.Minute), 1, "")
	ts.start("flaky", now.Add(-30*time.Second), 2, "tp-flaky")
	ts.start("stopped", now.Add(-time.Hour), 4, "")
	ts.stop("stopped")
	ts.start("future", now.Add(time.Hour), 5, "")

	var mu sync.Mutex
	var sent []string
	failures := 1
	all := make(chan struct{})
	fire := func(_ context.Context, pt paymentTimer) error {
		mu.Lock()
		defer mu.Unlock()
		if pt.orderID == "flaky" {
			if pt.traceParent != "tp-flaky" {
				t.Errorf("flaky fired with traceparent %q, want tp-flaky", pt.traceParent)
			}
			if failures > 0 {
				failures--
				return errors.New("no answer")
			}
		}
		sent = append(sent, pt.orderID)
		if len(sent) == 3 {
			close(all)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.run(ctx, time.Now, fire, slog.New(slog.DiscardHandler))
	}()
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatal("the due timers were not all sent within 20s")
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"early", "late", "flaky"}; !slices.Equal(sent, want) {
		// flaky failed once and was postponed behind late.
		t.Errorf("sent %v, want %v", sent, want)
	}
	if n := ts.pending(); n != 1 {
		t.Errorf("pending() = %d after firing, want 1 (the future timer)", n)
	}
	if low, _ := ts.oldest(); low != 5 {
		t.Errorf("oldest() = %d, want 5 (the future timer's)", low)
	}
}
