package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// TestStockStaleWriterNeverOversells: an instance that lost the writer
// lease without noticing yet still holds the SKU's stock in its lane's
// memory, from before the new holder sold the last unit. Its next
// reservation is decided on that stale stock, but its append expects the
// stream revision it knew: the store refuses it, the lane reloads, decides
// again on fresh stock and answers out_of_stock.
func TestStockStaleWriterNeverOversells(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store := serve.CommandStore{Store: openStore(t)}
	old := commands.NewStockService(store, commands.StockOptions{})
	defer old.Close()
	if r := old.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: "last", Quantity: 1}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if v, err := old.Get(ctx, "last"); err != nil || v.Available != 1 {
		t.Fatalf("the old writer's stock: %+v, %v", v, err)
	}
	// The lease passes; the new writer sells the last unit.
	taker := commands.NewStockService(store, commands.StockOptions{})
	defer taker.Close()
	if r := taker.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "last", OrderID: uuid.NewString(), Quantity: 1}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if v, err := old.Get(ctx, "last"); err != nil || v.Available != 1 {
		t.Fatalf("the old writer's lane must still hold the stale stock for this test: %+v, %v", v, err)
	}
	r := old.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.ReserveStock{SKU: "last", OrderID: uuid.NewString(), Quantity: 1}})
	if !errors.Is(r.Err, domain.ErrOutOfStock) {
		t.Fatalf("the stale writer's reservation: %+v; want out_of_stock", r)
	}
	if r.Stock.Available != 0 || r.Stock.Reserved != 1 {
		t.Fatalf("stock after the refusal: %+v; want 1 reserved, none available", r.Stock)
	}
}
