package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult summarises a closed-loop load run.
type loadResult struct {
	Ops      int           `json:"ops"`
	Duration time.Duration `json:"duration_ns"`
	PerSec   float64       `json:"ops_per_sec"`
	P50      time.Duration `json:"p50_ns"`
	P95      time.Duration `json:"p95_ns"`
	P99      time.Duration `json:"p99_ns"`
	Errors   int           `json:"errors"`
}

// summarize turns per-operation latencies into a loadResult.
func summarize(lat []time.Duration, errors int, elapsed time.Duration) loadResult {
	r := loadResult{Ops: len(lat), Duration: elapsed, Errors: errors}
	if len(lat) == 0 {
		return r
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	r.PerSec = float64(len(lat)) / elapsed.Seconds()
	r.P50, r.P95, r.P99 = q(0.50), q(0.95), q(0.99)
	return r
}

// runLoad runs op in a closed loop on clients goroutines for d and
// summarises the latencies of the operations that succeeded.
func runLoad(ctx context.Context, clients int, d time.Duration, op func(ctx context.Context, client, i int) error) loadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, clients)
	errs := make([]int, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(ctx, c, i); err != nil {
					if ctx.Err() == nil {
						errs[c]++
					}
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	total := 0
	for _, e := range errs {
		total += e
	}
	return summarize(slices.Concat(lat...), total, time.Since(start))
}

// highWater is the highest log position the bench's commands reported,
// safe for concurrent clients: the position the service's saga and read
// models must reach before the work the load caused is done.
type highWater struct{ p atomic.Uint64 }

// raise records pos if it is above what was recorded.
func (h *highWater) raise(pos uint64) {
	for p := h.p.Load(); pos > p; p = h.p.Load() {
		if h.p.CompareAndSwap(p, pos) {
			return
		}
	}
}

// position is the highest position recorded.
func (h *highWater) position() uint64 { return h.p.Load() }
