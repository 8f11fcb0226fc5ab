package main

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/ordo-dev/ordo/eventstore"
)

// benchStore is an embedded store holding 20,000 orders (about 90,000
// events) along every lifecycle path, filled once per benchmark process.
var benchStore struct {
	once sync.Once
	dir  string
	n    int64
}

func filledStore(b *testing.B) string {
	benchStore.once.Do(func() {
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
// over the embedded store. One op is one pass; events/s is the figure.
func BenchmarkVerify(b *testing.B) {
	dir := filledStore(b)
	ctx := context.Background()
	sf := storeFlags{data: dir}
	store, err := sf.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var events int64
	b.ResetTimer()
	for b.Loop() {
		rep, err := verifyStore(ctx, store, eventstore.Filter{}, head, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Violations) > 0 {
			b.Fatalf("violations in a sound store: %v", rep.Violations[:1])
		}
		events += rep.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVerifyFold is the CPU side alone: decode and fold events already
// in memory, the ceiling the read path is measured against.
func BenchmarkVerifyFold(b *testing.B) {
	dir := filledStore(b)
	ctx := context.Background()
	sf := storeFlags{data: dir}
	store, err := sf.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var all []eventstore.RecordedEvent
	err = store.ReadAll(ctx, 0, eventstore.Filter{}, func(e eventstore.RecordedEvent) error { all = append(all, e); return nil })
	store.Close()
	if err != nil {
		b.Fatal(err)
	}
	var events int64
	b.ResetTimer()
	for b.Loop() {
		v := newVerifier()
		for _, e := range all {
			v.add(e)
		}
		events += v.report.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// tempDirOutsideTest is a directory that outlives one benchmark function,
// so the filled store is shared by all of them in the process.
func tempDirOutsideTest() (string, error) { return os.MkdirTemp("", "ordo-verify-bench-") }

// TestMain removes the benchmarks' shared store when the process ends.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore.dir != "" {
		os.RemoveAll(benchStore.dir)
	}
	os.Exit(code)
}
