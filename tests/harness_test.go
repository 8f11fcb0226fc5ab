// Package tests holds Ordo's end-to-end tests: they boot the same
// composition `ordo serve` runs (serve.Start) on loopback ports and a
// temporary data directory, and drive it through the Go client over NATS.
// With ORDO_NATS_URL and/or ORDO_ESDB_URL set they use those servers instead.
package tests

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// system is a running service plus a client connected to it.
type system struct {
	svc    *serve.Service
	cfg    serve.Config
	nc     *natsgo.Conn
	client *ordonats.Client
}

// config is the service configuration of the tests. Stock is manual: the
// tests of the order lifecycle send the stock results themselves; the stock
// and saga tests turn the saga's reservations on (sagaConfig).
func config(tb testing.TB, dir string) serve.Config {
	return serve.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0",
		NATSURL: os.Getenv("ORDO_NATS_URL"), ESDBURL: os.Getenv("ORDO_ESDB_URL"),
		ManualStock: true,
	}
}

// start boots the service on cfg and connects a client; both stop at cleanup.
func start(tb testing.TB, cfg serve.Config) *system {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := serve.Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("start the service: %v", err)
	}
	s := &system{svc: svc, cfg: cfg}
	tb.Cleanup(func() { s.stop(tb) })
	s.nc, err = natsgo.Connect(svc.NATSURL())
	if err != nil {
		tb.Fatal(err)
	}
	if s.client, err = ordonats.NewClient(s.nc, ordonats.ClientOptions{CallbackSigner: s.signer(tb)}); err != nil {
		tb.Fatal(err)
	}
	return s
}

func (s *system) stop(tb testing.TB) {
	if s.svc == nil {
		return
	}
	s.client.Close()
	s.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.svc.Shutdown(ctx); err != nil {
		tb.Errorf("shutdown: %v", err)
	}
	s.svc = nil
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func placeCmd(id string) domain.PlaceOrder {
	return domain.PlaceOrder{Order: id, CustomerID: "c-1", Currency: "EUR",
		Lines: []domain.Line{{SKU: "sku-1", Quantity: 2, UnitPrice: 1250}}}
}

const total = 2500

// paidOrder places an order, marks its stock reserved and pays it.
func paidOrder(tb testing.TB, s *system) string {
	tb.Helper()
	ctx := ctxT(tb)
	id := uuid.NewString()
	must(tb)(s.client.PlaceOrder(ctx, placeCmd(id)))
	must(tb)(s.client.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id}))
	must(tb)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "pay-" + id[:8], Amount: total}))
	return id
}

func must(tb testing.TB) func(ordonats.Outcome, error) ordonats.Outcome {
	return func(o ordonats.Outcome, err error) ordonats.Outcome {
		tb.Helper()
		if err != nil {
			tb.Fatalf("command failed: %v", err)
		}
		return o
	}
}

type recorded = eventstore.RecordedEvent

func connectStore(tb testing.TB, url string) *eventstore.Store {
	tb.Helper()
	s, err := eventstore.Connect(ctxT(tb), url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
