package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppend measures durable single-event appends to distinct streams
// straight into the store (no gRPC), with concurrent writers.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openTest(b, "")
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu := cpuTime()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stream := fmt.Sprintf("w-%d", w)
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Append(context.Background(), stream, Expected{}, events(int(next.Load()), 1)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadAll reads the log forwards; one op is one record.
func BenchmarkReadAll(b *testing.B) {
	s := openTest(b, "")
	ctx := context.Background()
	for done := 0; done < b.N; done += 1000 {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", done), Expected{}, events(done, min(1000, b.N-done))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	n := 0
	if err := s.ReadAll(ctx, 0, false, Forwards, 0, Filter{}, func(Record) error { n++; return nil }); err != nil {
		b.Fatal(err)
	}
	if n != b.N {
		b.Fatalf("read %d, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
