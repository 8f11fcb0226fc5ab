package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// runLifecycle drives orders through the lifecycle with closed-loop
// clients, then measures the bare JetStream round trip with the same
// clients and prints the ratio.
func runLifecycle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("ordo-bench lifecycle [--clients N] [--duration D] [--nats-url URL [--nats-user U --nats-password P | --nats-creds FILE | --nats-nkey FILE] [--nats-ca FILE]] [--cpuprofile FILE] [--json]",
		"Drives orders through place, stock reserved, pay, ship and deliver with N closed-loop\n"+
			"clients, then measures the bare JetStream round trip with the same clients, and prints the ratio.",
		[]string{"ordo-bench lifecycle --clients 64 --duration 10s"}, stderr)
	clients := fs.Int("clients", 64, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long each measurement runs")
	natsURL := fs.String("nats-url", "", "a running ordo serve (default: start an embedded one in a temporary directory)")
	manualStock := fs.Bool("manual-stock", false, "start the embedded service with --manual-stock: no saga reservations, timers only (the command path alone)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the lifecycle measurement to this file")
	measureBare := fs.Bool("bare", true, "also measure the bare JetStream round trip and print the ratio")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	creds := flagset.AddNATSCredentials(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	connOpts, err := connectOptions(*natsURL, creds)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("lifecycle takes no arguments, got %q", fs.Args())}
	}
	if *clients < 1 || *duration <= 0 {
		return usageError{"--clients must be at least 1 and --duration positive"}
	}
	url := *natsURL
	if url == "" {
		dir, err := os.MkdirTemp("", "ordo-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		svc, err := serve.Start(ctx, serve.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0",
			ManualStock: *manualStock})
		if err != nil {
			return err
		}
		defer svc.Shutdown(context.Background())
		url = svc.NATSURL()
	}
	nc, err := natsgo.Connect(url, append(connOpts, natsgo.Name("ordo-bench"))...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{})
	if err != nil {
		return err
	}
	defer client.Close()
	// Against a service whose saga reserves stock, the SKU needs stock and
	// the saga may mark an order reserved before the bench does (below).
	if _, err := client.AddStock(ctx, "sku-1", 1_000_000_000, ""); err != nil {
		fmt.Fprintf(stderr, "note: could not add stock for the bench SKU (%v); a saga reserving stock will cancel the orders\n", err)
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	var last highWater
	cpu0 := processCPU()
	life := runLoad(ctx, *clients, *duration, lifecycleOp(client, &last))
	windowCPU := processCPU() - cpu0
	// The saga and the read models follow the log behind the commands; on a
	// busy machine they fall behind during the run, and their work would
	// escape a measurement that stopped with the load. The CPU counted is
	// everything until they have handled the last command's events.
	caughtUpFrom := time.Now()
	if err := awaitCaughtUp(ctx, nc, last.position()); err != nil {
		return err
	}
	catchUp := time.Since(caughtUpFrom)
	cpu := processCPU() - cpu0
	stopProfile()
	// The service runs in this process unless --nats-url was given, so the
	// process's CPU time covers the load generator, NATS, the workers and
	// the event store: a figure that other work on the machine disturbs far
	// less than commands/s.
	var cpuPerCommand, windowCPUPerCommand time.Duration
	if life.Ops > 0 {
		cpuPerCommand = cpu / time.Duration(life.Ops)
		windowCPUPerCommand = windowCPU / time.Duration(life.Ops)
	}
	var bare loadResult
	if *measureBare {
		if bare, err = measureRoundTrip(ctx, nc, *clients, *duration); err != nil {
			return err
		}
	}
	ratio := 0.0
	if bare.PerSec > 0 {
		ratio = life.PerSec / bare.PerSec
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"clients": *clients, "lifecycle": life, "bare_round_trip": bare, "ratio": ratio,
			"cpu_per_command_ns": cpuPerCommand, "cpu_per_command_during_load_ns": windowCPUPerCommand, "catch_up_ns": catchUp})
	}
	fmt.Fprintf(stdout, "clients %d, %s each\n", *clients, *duration)
	fmt.Fprintf(stdout, "lifecycle commands  %9.0f/s  p50 %8s  p95 %8s  p99 %8s  (%d commands, %d errors)\n", life.PerSec, life.P50, life.P95, life.P99, life.Ops, life.Errors)
	fmt.Fprintf(stdout, "process CPU         %9s per command (all of this process: clients, NATS, workers, event store, saga and read models until they caught up)\n", cpuPerCommand.Round(time.Microsecond))
	fmt.Fprintf(stdout, "                    %9s per command during the load; the saga and read models caught up %s after it\n", windowCPUPerCommand.Round(time.Microsecond), catchUp.Round(time.Millisecond))
	if *measureBare {
		fmt.Fprintf(stdout, "bare round trip     %9.0f/s  p50 %8s  p95 %8s  p99 %8s\n", bare.PerSec, bare.P50, bare.P95, bare.P99)
		fmt.Fprintf(stdout, "ratio               %9.2f×\n", ratio)
	}
	return nil
}

// Polling for the saga's reservation backs off from sagaPollFirst,
// doubling up to sagaPollMax: a fixed short interval made the bench's
// own order reads a noticeable share of the service's CPU under many
// clients, which inflated the CPU per command; a wait overshoots the
// reservation by at most sagaPollMax.
const (
	sagaPollFirst = time.Millisecond
	sagaPollMax   = 4 * time.Millisecond
)

// awaitStockDecided waits until the service's saga has reserved the
// order's stock (polling the order, with backoff), or says why it did not.
func awaitStockDecided(ctx context.Context, c *ordonats.Client, id string) error {
	wait := sagaPollFirst
	for {
		v, err := c.GetOrder(ctx, id)
		switch {
		case err != nil:
			return err
		case v.State == domain.StateAwaitingPayment:
			return nil
		case v.State != domain.StatePlaced:
			return fmt.Errorf("order %s is %s (%s), not awaiting payment", id, v.State, v.Cancelled)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, sagaPollMax)
	}
}

// lifecycleOp returns one command per call; each client walks its own
// orders through the five commands of the happy path in turn.
func lifecycleOp(c *ordonats.Client, last *highWater) func(ctx context.Context, client, i int) error {
	var sagaReserves atomic.Bool // the service refused a client's MarkStockReserved: its saga records the stock
	return func(ctx context.Context, client, i int) error {
		// Orders are derived from (client, i/5) so every step addresses the
		// order the previous steps of this client built.
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "bench-%d-%d-%d", os.Getpid(), client, i/5)).String()
		var (
			out ordonats.Outcome
			err error
		)
		defer func() { last.raise(out.Position) }()
		switch i % 5 {
		case 0:
			out, err = c.PlaceOrder(ctx, domain.PlaceOrder{Order: id, CustomerID: "bench", Currency: "EUR", Lines: []domain.Line{{SKU: "sku-1", Quantity: 1, UnitPrice: 1000}}})
		case 1:
			if sagaReserves.Load() {
				return awaitStockDecided(ctx, c, id)
			}
			out, err = c.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id})
			switch {
			case errors.Is(err, domain.ErrSagaOnly):
				// The service's saga reserves (it runs without --manual-stock):
				// this step is its reservation, which the client waits for.
				sagaReserves.Store(true)
				return awaitStockDecided(ctx, c, id)
			case errors.Is(err, domain.ErrIllegalTransition):
				err = nil // the stock was decided before
			}
		case 2:
			out, err = c.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "p-" + id[:8], Amount: 1000})
		case 3:
			out, err = c.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "bench", TrackingNumber: "T"})
		default:
			out, err = c.ConfirmDelivery(ctx, domain.ConfirmDelivery{Order: id})
		}
		return err
	}
}
