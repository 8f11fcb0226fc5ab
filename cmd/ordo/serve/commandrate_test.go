package serve

import (
	"maps"
	"testing"
	"time"
)

// TestCommandRateWindow: the ring counts commands and errors per bucket,
// shows exactly the last rateBuckets buckets oldest first, and forgets a
// bucket once the window has moved past it.
func TestCommandRateWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	now := t0
	c := newCommandRate(func() time.Time { return now })
	type step struct {
		at    time.Duration // after t0
		codes []string      // "" for an applied command
	}
	for _, tt := range []struct {
		name         string
		steps        []step
		viewAt       time.Duration
		wantCommands int64
		wantErrors   map[string]int64
		wantLast     RateBucket // the newest bucket
	}{
		{"one bucket", []step{{0, []string{"", "", "illegal_transition"}}}, 5 * time.Second, 3, map[string]int64{"illegal_transition": 1},
			RateBucket{Start: t0, Commands: 3, Errors: 1}},
		{"the next bucket", []step{{12 * time.Second, []string{"", "not_found", "not_found"}}}, 15 * time.Second, 6,
			map[string]int64{"illegal_transition": 1, "not_found": 2}, RateBucket{Start: t0.Add(10 * time.Second), Commands: 3, Errors: 2}},
		{"an empty bucket after", nil, 25 * time.Second, 6, map[string]int64{"illegal_transition": 1, "not_found": 2},
			RateBucket{Start: t0.Add(20 * time.Second)}},
		{"the first bucket leaves the window", nil, rateBuckets * rateBucket, 3, map[string]int64{"not_found": 2},
			RateBucket{Start: t0.Add(rateBuckets * rateBucket)}},
		{"its slot is reused, not added to", []step{{rateBuckets*rateBucket + time.Second, []string{""}}}, rateBuckets*rateBucket + 2*time.Second, 4,
			map[string]int64{"not_found": 2}, RateBucket{Start: t0.Add(rateBuckets * rateBucket), Commands: 1}},
		{"everything leaves the window", nil, 3 * rateBuckets * rateBucket, 0, map[string]int64{},
			RateBucket{Start: t0.Add(3 * rateBuckets * rateBucket)}},
	} {
		for _, s := range tt.steps {
			now = t0.Add(s.at)
			for _, code := range s.codes {
				c.record(code)
			}
		}
		now = t0.Add(tt.viewAt)
		v := c.view()
		var errs int64
		for _, n := range tt.wantErrors {
			errs += n
		}
		if len(v.Buckets) != rateBuckets || v.Commands != tt.wantCommands || v.Errors != errs || !maps.Equal(v.ErrorsByCode, tt.wantErrors) {
			t.Errorf("%s: %d buckets, %d commands, %d errors %v; want %d, %d, %d %v", tt.name, len(v.Buckets), v.Commands, v.Errors, v.ErrorsByCode,
				rateBuckets, tt.wantCommands, errs, tt.wantErrors)
			continue
		}
		if last := v.Buckets[len(v.Buckets)-1]; last != tt.wantLast {
			t.Errorf("%s: newest bucket %+v, want %+v", tt.name, last, tt.wantLast)
		}
		if first := v.Buckets[0]; !first.Start.Equal(tt.wantLast.Start.Add(-(rateBuckets - 1) * rateBucket)) {
			t.Errorf("%s: oldest bucket starts %v, want %v", tt.name, first.Start, tt.wantLast.Start.Add(-(rateBuckets-1)*rateBucket))
		}
	}
}
