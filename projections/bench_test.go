package projections_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
)

// fillOrders appends n orders of five events each (place, reserved, paid,
// shipped, delivered) with 32 concurrent writers and returns the head.
func fillOrders(tb testing.TB, s *eventstore.Store, n int) uint64 {
	tb.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	next := make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
	}()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				id := uuid.NewString()
				meta := domain.EventMeta{CommandID: uuid.NewString(), OccurredAt: time.Now()}
				var evs []eventstore.EventData
				for _, d := range []domain.EventData{
					domain.OrderPlaced{OrderID: id, CustomerID: "c", Total: domain.Money{Amount: 1000, Currency: "EUR"}, Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}},
					domain.StockReserved{},
					domain.PaymentSucceeded{PaymentID: "p", Amount: domain.Money{Amount: 1000, Currency: "EUR"}},
					domain.OrderShipped{Carrier: "c", TrackingNumber: "t"},
					domain.OrderDelivered{},
				} {
					typ, data, md, err := domain.EncodeEvent(domain.Event{Type: d.EventType(), Data: d, Meta: meta})
					if err != nil {
						tb.Error(err)
						return
					}
					evs = append(evs, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md})
				}
				if _, err := s.Append(ctx, "order-"+id, eventstore.NoStream(), evs...); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	head, err := s.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return head
}

// BenchmarkProjectionCatchUp measures events/s applied by the runner from
// the event store's subscription, from position 0 to the head, into SQLite
// and (with ORDO_TEST_POSTGRES_DSN set) PostgreSQL. One op is one event.
func BenchmarkProjectionCatchUp(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchCatchUp(b, target{dir: b.TempDir()}) })
	b.Run("postgres", func(b *testing.B) { benchCatchUp(b, target{dsn: freshPostgres(b), dir: b.TempDir()}) })
}

func benchCatchUp(b *testing.B, tg target) {
	ctx := context.Background()
	es, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	// The fill stays inside the timed region so the benchmark framework
	// sizes b.N by the whole run and never grows it past what fits; the
	// reported rate covers the catch-up alone.
	head := fillOrders(b, es, (b.N+4)/5)
	store := tg.openStore(b)
	runner := projections.NewRunner(store, eventstore.ProjectionSource{Store: es}, nil)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	go runner.Run(rctx)
	if err := runner.WaitFor(ctx, head); err != nil {
		b.Fatal(err)
	}
	events := runner.Status(ctx).Events
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}
