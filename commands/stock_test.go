package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

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
	svc := commands.NewStockService(eventstore.CommandStore{Store: store}, commands.StockOptions{})
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
	events := view.Revision + 1
	t.Logf("%d stock events in the stream", events)
	if events != 201 {
		t.Fatalf("%d events, want 201 (one add, 200 reservations)", events)
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
	a := commands.NewStockService(eventstore.CommandStore{Store: store}, commands.StockOptions{})
	b := commands.NewStockService(eventstore.CommandStore{Store: store}, commands.StockOptions{})
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
