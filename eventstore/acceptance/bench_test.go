package acceptance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

// BenchmarkAppend measures durably acknowledged single-event appends to
// distinct streams through the official client over loopback gRPC, with 1,
// 16 and 64 concurrent writers. One op is one append.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			c, srv := benchClient(b)
			ctx := context.Background()
			b.ResetTimer()
			cpu := cpuTime()
			stats := srv.WriteStats()
			lat := appendFromWriters(b, writers, func(stream string) error {
				_, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, event("Bench", `{"n":1}`))
				return err
			})
			b.StopTimer()
			// Client and server share the process, so this is the whole
			// CPU cost of an append (plus the benchmark's own bookkeeping).
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			if st := srv.WriteStats(); st.Groups > stats.Groups {
				b.ReportMetric(float64(st.Writes-stats.Writes)/float64(st.Groups-stats.Groups), "appends/sync")
			}
			reportLatency(b, slices.Concat(lat...))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// appendFromWriters spreads b.N appends over writers goroutines, each
// appending to a stream of its own with appendOne, and returns each
// writer's append latencies.
func appendFromWriters(b *testing.B, writers int, appendOne func(stream string) error) [][]time.Duration {
	lat := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := name(fmt.Sprintf("bench-%d", w))
			lat[w] = make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				start := time.Now()
				if err := appendOne(stream); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(start))
			}
		}()
	}
	wg.Wait()
	return lat
}

// statsSource is what benchClient's server reports; zero (noStats) against
// an external server (ORDO_ESDB_URL), where appends/sync is not reported.
type statsSource interface{ WriteStats() storage.WriteStats }

type noStats struct{}

func (noStats) WriteStats() storage.WriteStats { return storage.WriteStats{} }

// benchClient is client, but also returns the embedded server, so the
// benchmark can report how many appends shared each sync.
func benchClient(b *testing.B) (*esdb.Client, statsSource) {
	if os.Getenv("ORDO_ESDB_URL") != "" {
		return client(b), noStats{}
	}
	srv := startEmbedded(b, b.TempDir(), 0)
	return esdbtest.Connect(b, srv.URL()), srv
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// fill appends n events in batches of 500 and returns the first position.
func fill(b *testing.B, c *esdb.Client, n int) uint64 {
	b.Helper()
	stream := name("fill")
	var first uint64
	for done := 0; done < n; done += 500 {
		r, err := c.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{}, events(min(500, n-done))...)
		if err != nil {
			b.Fatal(err)
		}
		if first == 0 {
			first = r.CommitPosition - uint64(min(500, n-done)) + 1
		}
	}
	return first
}

// BenchmarkReadAll reads $all forwards; one op is one event.
func BenchmarkReadAll(b *testing.B) {
	c := client(b)
	from := fill(b, c, b.N)
	b.ResetTimer()
	rs, err := c.ReadAll(context.Background(), esdb.ReadAllOptions{From: esdb.Position{Commit: from, Prepare: from}}, uint64(b.N))
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()
	n := 0
	for {
		_, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	if n != b.N {
		b.Fatalf("read %d events, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSubscriptionDelivery catches a filtered $all subscription up over
// b.N events; one op is one delivered event.
func BenchmarkSubscriptionDelivery(b *testing.B) {
	c := client(b)
	from := fill(b, c, b.N)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Position{Commit: from - 1, Prepare: from - 1},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"fill-"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	for n := 0; n < b.N; {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			n++
		case ev.SubscriptionDropped != nil:
			b.Fatal(ev.SubscriptionDropped.Error)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPortAppend measures durably acknowledged single-event appends to
// distinct streams through the eventstore port, with 1, 16 and 64
// concurrent writers, for each implementation: the embedded store called
// in-process, and the official client over loopback gRPC to an embedded
// server in this process. One op is one append; cpu-µs/op is the whole
// process's CPU time per append.
func BenchmarkPortAppend(b *testing.B) {
	for _, impl := range implementations {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", impl.name, writers), func(b *testing.B) {
				s := impl.open(b)
				ctx := context.Background()
				b.ResetTimer()
				cpu := cpuTime()
				lat := appendFromWriters(b, writers, func(stream string) error {
					_, err := s.Append(ctx, stream, eventstore.Any(), portEvent("Bench", `{"n":1}`))
					return err
				})
				b.StopTimer()
				b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
				reportLatency(b, slices.Concat(lat...))
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkPortReadAll reads $all forwards through the eventstore port
// (ReadAll: one read at a time; ScanAll: several ranges at once), for each
// implementation. One op is one event.
func BenchmarkPortReadAll(b *testing.B) {
	for _, impl := range implementations {
		for _, read := range []string{"ReadAll", "ScanAll"} {
			b.Run(impl.name+"/"+read, func(b *testing.B) {
				s := impl.open(b)
				from := portFill(b, s, b.N)
				fn := s.ReadAll
				if read == "ScanAll" {
					fn = s.ScanAll
				}
				n := 0
				b.ResetTimer()
				cpu := cpuTime()
				if err := fn(context.Background(), from, eventstore.Filter{}, func(eventstore.RecordedEvent) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if n < b.N {
					b.Fatalf("read %d events, want at least %d", n, b.N)
				}
				b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(n), "cpu-µs/op")
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// portFill appends n events in batches of 500 through s and returns the
// position of the first.
func portFill(b *testing.B, s *eventstore.Store, n int) uint64 {
	b.Helper()
	stream := name("fill")
	var first uint64
	for done := 0; done < n; done += 500 {
		k := min(500, n-done)
		r, err := s.Append(context.Background(), stream, eventstore.Any(), portEvents(k)...)
		if err != nil {
			b.Fatal(err)
		}
		if first == 0 {
			first = r.Position - uint64(k) + 1
		}
	}
	return first
}
