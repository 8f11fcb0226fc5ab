package commands_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// BenchmarkStockHotSKU measures a stock lane and the embedded event store
// without the NATS transport in front of them: 64 callers in a closed loop
// reserve 1 unit each for a fresh order on one SKU through Execute, as
// `ordo bench hot-sku` does through the stock API. It reports
// reservations/s (wall clock), the process's cpu-µs per reservation
// (callers, lane and store) and how many reservations one append carried.
//
//	go test -run '^$' -bench StockHotSKU -benchtime 100000x ./commands/
func BenchmarkStockHotSKU(b *testing.B) {
	const callers, sku = 64, "bench-hot"
	ctx := context.Background()
	store := openStore(b)
	svc := commands.NewStockService(serve.CommandStore{Store: store}, commands.StockOptions{})
	defer svc.Close()
	if r := svc.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 1_000_000_000}}); r.Err != nil {
		b.Fatal(r.Err)
	}
	before, err := svc.Get(ctx, sku)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	elapsed, cpu := reserveConcurrently(ctx, b, svc, sku, callers)
	b.StopTimer()
	after, err := svc.Get(ctx, sku)
	if err != nil {
		b.Fatal(err)
	}
	if got := after.Reserved - before.Reserved; got != int64(b.N) {
		b.Fatalf("%d units reserved, want %d", got, b.N)
	}
	appends := after.Revision - before.Revision // every batch of reservations is one event
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reservations/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/reservation")
	b.ReportMetric(float64(b.N)/float64(max(appends, 1)), "reservations/append")
}

// reserveConcurrently has callers reserve 1 unit of sku each for a fresh
// order, b.N reservations in all, and returns the wall and process CPU
// time they took.
func reserveConcurrently(ctx context.Context, b *testing.B, svc *commands.StockService, sku string, callers int) (elapsed, cpu time.Duration) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	cpu0, start := processCPU(), time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				r := svc.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(),
					Command: domain.ReserveStock{SKU: sku, OrderID: uuid.NewString(), Quantity: 1}})
				if r.Err != nil {
					b.Error(r.Err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), processCPU() - cpu0
}

// processCPU is the user plus system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
