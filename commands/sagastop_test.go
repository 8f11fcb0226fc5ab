package commands_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// savedPositions keeps the saga's checkpoint in memory, where the test
// reads it (the real ones are a file in serve and a NATS key).
type savedPositions struct {
	mu  sync.Mutex
	pos uint64
}

func (c *savedPositions) Load(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos, nil
}

func (c *savedPositions) Save(_ context.Context, pos uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pos = pos
	return nil
}

// waitUntil polls cond for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
	}
}

// TestSagaStopLeavesUnfinishedStepsToTheNextRun: the writer lease is lost
// while the saga is reserving an order's stock; the stock refuses to write
// (the fence) and the saga stops. Its last checkpoint must stay before that
// order's OrderPlaced, so whoever runs the saga next reserves it. Counting
// the cut-off step as done would save a checkpoint past it, and the order
// would stay placed, or its reservation would never be settled.
func TestSagaStopLeavesUnfinishedStepsToTheNextRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	es := openStore(t)
	store := serve.CommandStore{Store: es}
	orders := commands.New(store, commands.Options{})
	stock := commands.NewStockService(store, commands.StockOptions{Fenced: true})
	defer stock.Close()
	cps := &savedPositions{}
	saga := commands.NewSaga(orders, stock, nil, serve.SagaSource{Store: es}, cps, commands.SagaOptions{CheckpointEvery: 10 * time.Millisecond})
	lease, lose := context.WithCancel(ctx)
	defer lose()
	endTerm := stock.WriteWhile(lease, nil)
	defer endTerm()
	ran := make(chan error, 1)
	go func() { ran <- saga.Run(lease) }()

	if r := stock.Execute(ctx, commands.StockRequest{CommandID: uuid.NewString(), Command: domain.AddStock{SKU: "s", Quantity: 10}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	place := func() (string, uint64) {
		id := uuid.NewString()
		res := orders.Execute(ctx, request(t, uuid.NewString(), domain.PlaceOrder{Order: id, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{line("s", 1)}}))
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return id, res.Position
	}
	first, _ := place()
	waitUntil(t, "the first order reserved", func() bool {
		v, err := orders.GetOrder(ctx, first)
		return err == nil && v.State == domain.StateAwaitingPayment
	})
	// The lease is lost for the stock first (its validity passed), the
	// saga is told a moment later.
	endTerm()
	second, placedAt := place()
	waitUntil(t, "the second order's reservation refused", func() bool {
		return strings.Contains(saga.Status().Error, second)
	})
	lose()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("the saga's run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the saga never stopped")
	}
	if got, _ := cps.Load(ctx); got >= placedAt {
		t.Fatalf("checkpoint %d after the stop: want before %d, the OrderPlaced of the order whose reservation was cut off", got, placedAt)
	}
	if v, err := orders.GetOrder(ctx, second); err != nil || v.State != domain.StatePlaced {
		t.Fatalf("the second order: %+v, %v; want still placed, for the next run", v.State, err)
	}
}
