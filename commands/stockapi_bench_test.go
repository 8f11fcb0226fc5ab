package commands_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// BenchmarkStockAPIReserve measures what checking reservations against
// their orders costs: 64 callers in a closed loop reserve 1 unit each for
// an order placed beforehand (not measured), on one SKU, through the
// StockAPI (order read from the cache, reservation, order read again) or,
// for comparison, straight through the StockService. It reports
// reservations/s and the process's cpu-µs per reservation.
//
//	go test -run '^$' -bench StockAPIReserve -benchtime 20000x ./commands/
func BenchmarkStockAPIReserve(b *testing.B) {
	for _, via := range []string{"service", "api"} {
		b.Run(via, func(b *testing.B) {
			const callers, sku = 64, "bench-api"
			ctx := context.Background()
			store := serve.CommandStore{Store: openStore(b)}
			orders := commands.New(store, commands.Options{})
			stock := commands.NewStockService(store, commands.StockOptions{})
			defer stock.Close()
			api := commands.NewStockAPI(stock, orders, commands.StockAPIOptions{ManualStock: true})
			if r := stock.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 1_000_000_000}}); r.Err != nil {
				b.Fatal(r.Err)
			}
			ids := placeOrders(b, orders, sku, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu, start := processCPU(), time.Now()
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						req := commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: sku, OrderID: ids[i], Quantity: 1}}
						var r commands.StockResult
						if via == "api" {
							done := make(chan commands.StockResult, 1)
							api.Submit(req, func(res commands.StockResult) { done <- res })
							r = <-done
						} else {
							r = stock.Execute(ctx, req)
						}
						if r.Err != nil {
							b.Error(r.Err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed, used := time.Since(start), processCPU()-cpu
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reservations/s")
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/reservation")
		})
	}
}

// placeOrders places n orders of 1 unit of sku, 64 at a time.
func placeOrders(b *testing.B, svc *commands.Service, sku string, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				ids[i] = uuid.NewString()
				body, _ := jsonOf(domain.PlaceOrder{Order: ids[i], CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: sku, Quantity: 1, UnitPrice: 1}}})
				res := svc.Execute(context.Background(), commands.Request{CommandID: uuid.NewString(), CommandType: domain.CmdPlaceOrder, OrderID: ids[i], Body: body})
				if res.Err != nil {
					b.Error(res.Err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return ids
}
