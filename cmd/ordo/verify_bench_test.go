package main

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/cmd/relaxgc"
	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/eventstore"
)

// benchStore is an embedded store holding 20,000 orders (about 90,000
// events) along every lifecycle path, filled once per benchmark process.
var benchStore struct {
	once sync.Once
	dir  string
	keep bool // given by ORDO_BENCH_STORE
}

func filledStore(b *testing.B) string {
	benchStore.once.Do(func() {
		// ORDO_BENCH_STORE keeps the filled store in that directory and
		// reuses it, so runs of two builds compare over the same events.
		if dir := os.Getenv("ORDO_BENCH_STORE"); dir != "" {
			if _, err := os.Stat(filepath.Join(dir, "eventstore")); err != nil {
				populate(b, dir, 20_000)
			}
			benchStore.dir, benchStore.keep = dir, true
			return
		}
		dir, err := tempDirOutsideTest()
		if err != nil {
			b.Fatal(err)
		}
		populate(b, dir, 20_000)
		benchStore.dir = dir
	})
	return benchStore.dir
}

// BenchmarkVerify measures `ordo verify`'s pass — $all through the official
// client over loopback gRPC, decode, fold through the FSM and invariants —
// over the embedded store, with the garbage collector set as the command
// sets it. One op is one pass; events/s is the figure.
func BenchmarkVerify(b *testing.B) {
	defer relaxgc.Set()()
	dir := filledStore(b)
	ctx := context.Background()
	sf := storeFlags{data: dir}
	store, done, err := sf.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer done()
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var events int64
	cpu := startCPU()
	for b.Loop() {
		rep, err := audit.Verify(ctx, serve.AuditStore{Store: store}, audit.Options{Head: head})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Violations) > 0 {
			b.Fatalf("violations in a sound store: %v", rep.Violations[:1])
		}
		events += rep.Events
	}
	cpu.report(b, events)
}

// BenchmarkVerifyFold is the CPU side alone: decode and fold events already
// in memory, the ceiling the read path is measured against.
func BenchmarkVerifyFold(b *testing.B) {
	dir := filledStore(b)
	ctx := context.Background()
	sf := storeFlags{data: dir}
	store, done, err := sf.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var all []audit.Event
	err = serve.AuditStore{Store: store}.ScanAll(ctx, 0, nil, func(e audit.Event) error { all = append(all, e); return nil })
	done()
	if err != nil {
		b.Fatal(err)
	}
	var events int64
	cpu := startCPU()
	for b.Loop() {
		v := audit.NewVerifier()
		for _, e := range all {
			v.Add(e)
		}
		events += v.Report().Events
	}
	cpu.report(b, events)
}

// BenchmarkVerifyRead is the read side alone: every event of $all through
// the official client, taken and dropped; ReadAll is one read at a time,
// ScanAll several ranges at once.
func BenchmarkVerifyRead(b *testing.B) {
	dir := filledStore(b)
	ctx := context.Background()
	sf := storeFlags{data: dir}
	store, done, err := sf.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer done()
	for _, read := range []struct {
		name string
		fn   func(context.Context, uint64, eventstore.Filter, func(eventstore.RecordedEvent) error) error
	}{{"ReadAll", store.ReadAll}, {"ScanAll", store.ScanAll}} {
		b.Run(read.name, func(b *testing.B) {
			var events int64
			cpu := startCPU()
			for b.Loop() {
				if err := read.fn(ctx, 0, eventstore.Filter{}, func(eventstore.RecordedEvent) error { events++; return nil }); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, events)
		})
	}
}

// processCPU is the user plus system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuClock measures the CPU time of the whole process — client, embedded
// server and every goroutine — over a benchmark's loop. On a machine
// shared with other work it varies much less than the wall-clock rate.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{processCPU()} }

// report adds events/s (wall clock) and cpu-µs/event.
func (c cpuClock) report(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((processCPU()-c.start).Microseconds())/float64(max(events, 1)), "cpu-µs/event")
}

// tempDirOutsideTest is a directory that outlives one benchmark function,
// so the filled store is shared by all of them in the process.
func tempDirOutsideTest() (string, error) { return os.MkdirTemp("", "ordo-verify-bench-") }
