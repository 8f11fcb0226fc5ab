package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

const workerChildEnv = "ORDO_TEST_WORKER_CHILD"

// TestWorkerProcessKilled runs the command workers in a child process
// (the same composition as `ordo serve`, pointed at this process's NATS and
// event store), kills it with SIGKILL while commands stream in, starts
// another, and checks every accepted command was applied exactly once.
func TestWorkerProcessKilled(t *testing.T) {
	if os.Getenv(workerChildEnv) != "" {
		workerChild()
		return
	}
	ctx := ctxT(t)
	dir := t.TempDir()
	ns, es := parentServers(t, ctx, dir)
	child := func() *exec.Cmd {
		return startChild(t, "TestWorkerProcessKilled", workerChildEnv, ns, es, t.TempDir())
	}
	first := child()
	nc, err := natsgo.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const orders = 300
	ids := make([]string, orders)
	var wg sync.WaitGroup
	var done atomic.Int64 // commands answered
	errs := make(chan error, orders)
	for i := range ids {
		ids[i] = uuid.NewString()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- drive(ctx, client, ids[i], &done)
		}()
	}
	// Kill the worker when a random share of the commands is answered, so
	// others are surely queued or in flight.
	killAt := int64(orders * 3 * (20 + rand.IntN(40)) / 100)
	for done.Load() < killAt {
		time.Sleep(time.Millisecond)
	}
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()
	atKill := done.Load()
	second := child()
	defer func() { _ = second.Process.Signal(syscall.SIGKILL); _ = second.Wait() }()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("killed the worker after %d of %d commands were answered", atKill, orders*3)
	if atKill >= orders*3 {
		t.Fatal("every command was answered before the kill; the test proved nothing")
	}
	// Exactly once: each order holds exactly its three events, each from a
	// distinct command.
	store := connectStore(t, es.URL())
	for _, id := range ids {
		var types []string
		seen := map[string]bool{}
		err := store.ReadStream(ctx, "order-"+id, 0, func(e recorded) error {
			ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
			if err != nil {
				return err
			}
			if seen[ev.Meta.CommandID] {
				return fmt.Errorf("command %s applied twice", ev.Meta.CommandID)
			}
			seen[ev.Meta.CommandID] = true
			types = append(types, e.Type)
			return nil
		})
		if err != nil || len(types) != 3 {
			t.Fatalf("order %s: events %v, %v; want placed, reserved, paid once each", id, types, err)
		}
	}
}

// drive sends place, reserve and pay for one order, resending with the same
// command ID when an outcome does not arrive in time.
func drive(ctx context.Context, c *ordonats.Client, id string, done *atomic.Int64) error {
	cmds := []domain.Command{placeCmd(id), domain.MarkStockReserved{Order: id}, domain.ConfirmPayment{Order: id, PaymentID: "p-" + id, Amount: total}}
	for i, cmd := range cmds {
		commandID := fmt.Sprintf("%s-%d", id, i)
		var err error
		for attempt := 0; attempt < 10; attempt++ {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = c.SendCommand(actx, cmd, ordonats.WithCommandID(commandID))
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("order %s command %d: %w", id, i, err)
		}
		done.Add(1)
	}
	return nil
}

// workerChild runs the service's workers against the parent's servers until
// it is killed.
func workerChild() {
	serveChild(func(cfg *serve.Config) { cfg.ManualStock = true })
}
