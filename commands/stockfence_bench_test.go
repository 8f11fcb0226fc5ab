package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// BenchmarkStockFence is BenchmarkStockHotSKU's closed loop (64 callers
// reserving on one SKU) without and with the writer fence, in one run, to
// compare what fencing every batch with a lease's validity costs.
//
//	go test -run '^$' -bench StockFence -benchtime 100000x -count 3 ./commands/
func BenchmarkStockFence(b *testing.B) {
	for _, fenced := range []bool{false, true} {
		name := "unfenced"
		if fenced {
			name = "fenced"
		}
		b.Run(name, func(b *testing.B) {
			const callers, sku = 64, "bench-fence"
			ctx := context.Background()
			svc := commands.NewStockService(serve.CommandStore{Store: openStore(b)}, commands.StockOptions{Fenced: fenced})
			defer svc.Close()
			if fenced {
				// As a lease renewed every moment would: valid a while from now.
				defer svc.WriteWhile(ctx, func() time.Time { return time.Now().Add(time.Minute) })()
			}
			if r := svc.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 1_000_000_000}}); r.Err != nil {
				b.Fatal(r.Err)
			}
			b.ResetTimer()
			elapsed, used := reserveConcurrently(ctx, b, svc, sku, callers)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reservations/s")
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/reservation")
		})
	}
}
