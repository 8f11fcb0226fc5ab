package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

// TestStockHotSKU reserves one SKU from 500 concurrent callers holding 200
// units: exactly 200 succeed, the rest get out_of_stock, the stream folds to
// zero available, and far fewer appends than commands were needed.
func TestStockHotSKU(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := commands.NewStockService(serve.CommandStore{Store: store}, commands.StockOptions{})
	defer svc.Close()
	add := commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: "hot", Quantity: 200}}
	for range 2 { // the retry of the same command adds nothing
		if r := svc.Execute(ctx, add); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	var ok, out atomic.Int64
	var wg sync.WaitGroup
	orders := make([]string, 500)
	for i := range orders {
		orders[i] = uuid.NewString()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := svc.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "hot", OrderID: orders[i], Quantity: 1}})
			switch {
			case r.Err == nil:
				ok.Add(1)
			case errors.Is(r.Err, domain.ErrOutOfStock):
				out.Add(1)
			default:
				t.Error(r.Err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 200 || out.Load() != 300 {
		t.Fatalf("%d reserved, %d out of stock; want 200 and 300", ok.Load(), out.Load())
	}
	// A repeated reservation changes nothing; a release frees one unit.
	r := svc.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "hot", OrderID: orders[0], Quantity: 1}})
	if r.Err != nil && !errors.Is(r.Err, domain.ErrOutOfStock) || len(r.Events) != 0 {
		t.Fatalf("repeated reservation: %+v", r)
	}
	view, err := svc.Get(ctx, "hot")
	if err != nil || view.Available != 0 || view.OnHand != 200 || view.Reserved != 200 {
		t.Fatalf("stock %+v, %v; want 200 on hand, all reserved", view, err)
	}
	// The stream holds each successful order's reservation exactly once,
	// in fewer events than reservations (a batch's reservations share one).
	reserved := map[string]int{}
	events := 0
	err = serve.CommandStore{Store: store}.ReadStream(ctx, domain.StockStream("hot"), 0, func(e commands.StoredEvent) error {
		events++
		ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
		if r, ok := ev.Data.(domain.InventoryReserved); ok {
			for _, o := range r.Reservations() {
				reserved[o.OrderID]++
			}
		}
		return err
	})
	t.Logf("%d stock events in the stream", events)
	if err != nil || int64(events) != view.Revision+1 {
		t.Fatalf("read %d events (%v), the stock is at revision %d", events, err, view.Revision)
	}
	if len(reserved) != 200 || events >= 201 {
		t.Fatalf("%d orders reserved in %d events, want 200 in fewer than 201 (one add, 200 reservations)", len(reserved), events)
	}
	for o, n := range reserved {
		if n != 1 {
			t.Fatalf("order %s reserved %d times", o, n)
		}
	}
}

// TestStockTwoWriters runs two services (as two processes would) on the
// same SKU: the expected revision catches every race and nothing oversells.
func TestStockTwoWriters(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := commands.NewStockService(serve.CommandStore{Store: store}, commands.StockOptions{})
	b := commands.NewStockService(serve.CommandStore{Store: store}, commands.StockOptions{})
	defer a.Close()
	defer b.Close()
	if r := a.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: "x", Quantity: 50}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc := a
			if i%2 == 1 {
				svc = b
			}
			r := svc.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "x", OrderID: uuid.NewString(), Quantity: 1}})
			if r.Err == nil {
				ok.Add(1)
			} else if !errors.Is(r.Err, domain.ErrOutOfStock) {
				t.Error(fmt.Errorf("reserve: %w", r.Err))
			}
		}()
	}
	wg.Wait()
	view, err := a.Get(ctx, "x")
	if err != nil || ok.Load() != 50 || view.Available != 0 || view.Reserved != 50 {
		t.Fatalf("%d reserved, stock %+v (%v); want exactly 50", ok.Load(), view, err)
	}
}

// TestStockSubmitLanesComeAndGo submits commands while lanes retire after
// 1ms idle and, at the end, while the service closes: every command gets
// exactly one result, none is lost in a lane that left, and every
// reservation reported as applied is in the stock.
func TestStockSubmitLanesComeAndGo(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := commands.NewStockService(serve.CommandStore{Store: store}, commands.StockOptions{IdleStop: time.Millisecond})
	skus := []string{"a", "b", "c"}
	for _, sku := range skus {
		if r := svc.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: sku, Quantity: 1_000_000}}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	var mu sync.Mutex
	results := map[string]int{} // command ID → results received
	applied := map[string]int64{}
	var wg sync.WaitGroup
	submit := func(sku string) {
		id := uuid.NewString()
		mu.Lock()
		results[id] = 0
		mu.Unlock()
		wg.Add(1)
		svc.Submit(commands.StockRequest{CommandID: id, Command: domain.ReserveStock{SKU: sku, OrderID: uuid.NewString(), Quantity: 1}}, func(r commands.StockResult) {
			mu.Lock()
			results[id]++
			if r.Err == nil {
				applied[sku]++
			} else if !errors.Is(r.Err, commands.ErrStockServiceClosed) {
				t.Errorf("reserve %s: %v", sku, r.Err)
			}
			mu.Unlock()
			wg.Done()
		})
	}
	for round := range 60 {
		for i := range 10 {
			submit(skus[(round+i)%len(skus)])
		}
		time.Sleep(time.Duration(round%4) * time.Millisecond) // idle long enough, sometimes, for lanes to retire
	}
	wg.Wait()
	for _, sku := range skus {
		v, err := svc.Get(ctx, sku)
		if err != nil || v.Reserved != applied[sku] {
			t.Fatalf("%s: %+v (%v), but %d reservations were applied", sku, v, err, applied[sku])
		}
	}
	for range 200 {
		submit(skus[0])
	}
	svc.Close()
	wg.Wait()
	for id, n := range results {
		if n != 1 {
			t.Fatalf("command %s got %d results, want 1", id, n)
		}
	}
	svc.Submit(commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "a", OrderID: uuid.NewString(), Quantity: 1}}, func(r commands.StockResult) {
		if !errors.Is(r.Err, commands.ErrStockServiceClosed) {
			t.Errorf("submit after close: %v, want ErrStockServiceClosed", r.Err)
		}
	})
}
