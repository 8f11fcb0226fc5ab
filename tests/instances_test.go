package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
)

const instancesChildEnv = "ORDO_TEST_INSTANCES_CHILD"

// instancesLeaseTTL is the children's lease TTL: the saga's takeover after
// a kill is bounded by about this much.
const instancesLeaseTTL = 2 * time.Second

// TestTwoInstancesOneSystem runs two `ordo serve` instances (child
// processes) against one NATS and one event store, drives a sale of two
// SKUs through both, and kills the instance running the saga and the stock
// (the holder of the writer lease) with SIGKILL midway: the other takes
// the lease over within seconds and finishes the work. At the end no
// acknowledged command is lost or applied twice, every order ended in one
// consistent state, and the stock holds exactly the reservations of the
// orders awaiting payment, never below zero.
func TestTwoInstancesOneSystem(t *testing.T) {
	if os.Getenv(instancesChildEnv) != "" {
		serveChild(func(cfg *serve.Config) { cfg.PaymentTimeout = time.Hour; cfg.LeaseTTL = instancesLeaseTTL })
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns, es := parentServers(t, ctx, t.TempDir())
	dirs := map[string]*exec.Cmd{}
	for range 2 {
		dir := t.TempDir()
		cmd := startChild(t, "TestTwoInstancesOneSystem", instancesChildEnv, ns, es, dir)
		dirs[dir] = cmd
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
			}
		})
	}
	client, nc := flashSaleClient(t, ctx, ns, 60*time.Second, "the instances")
	js, _ := jetstream.New(nc)
	leases, err := js.KeyValue(ctx, ordonats.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	holder := func() string {
		e, err := leases.Get(ctx, "saga-and-stock")
		if err != nil {
			return ""
		}
		return string(e.Value())
	}
	// Both instances take commands: the workers share one consumer.
	eventually.True(t, 30*time.Second, "two workers on the shared consumer", func() bool {
		c, err := js.Consumer(ctx, ordonats.StreamCommands, ordonats.ConsumerWorkers)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumWaiting >= 2
	})

	const orders = 300
	sale := placeFlashSale(t, ctx, client, orders, 16) // bounded load: 16 clients at a time
	sale.waitPlaced(orders / 3)
	before := holder()
	var victim *exec.Cmd
	for dir, cmd := range dirs {
		if strings.HasSuffix(before, ":"+dir) {
			victim = cmd
		}
	}
	if victim == nil {
		t.Fatalf("the writer lease is held by %q, neither instance (%v)", before, dirs)
	}
	_ = victim.Process.Signal(syscall.SIGKILL)
	_ = victim.Wait()
	killed := time.Now()
	t.Logf("killed the lease holder after %d of %d orders were placed", sale.placed.Load(), orders)
	eventually.True(t, 30*time.Second, "the other instance to take the lease", func() bool {
		h := holder()
		return h != "" && h != before
	})
	took := time.Since(killed)
	t.Logf("the saga and stock writer moved to the other instance %v after the kill", took.Round(10*time.Millisecond))
	if took > 4*instancesLeaseTTL {
		t.Errorf("takeover took %v; want within a few seconds (lease TTL %v)", took, instancesLeaseTTL)
	}
	sale.wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkSoldOut(t, ctx, client, sale.ids)

	// Nothing lost, nothing doubled: every order stream holds its OrderPlaced
	// once, and no command ID twice.
	store, err := eventstore.Connect(ctx, es.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, id := range sale.ids {
		seen, placedN := map[string]bool{}, 0
		err := store.ReadStream(ctx, "order-"+id, 0, func(e eventstore.RecordedEvent) error {
			ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
			if err != nil {
				return err
			}
			if seen[ev.Meta.CommandID] {
				return errors.New("command " + ev.Meta.CommandID + " applied twice")
			}
			seen[ev.Meta.CommandID] = true
			if e.Type == domain.EvtOrderPlaced {
				placedN++
			}
			return nil
		})
		if err != nil || placedN != 1 {
			t.Fatalf("order %s: %v, %d OrderPlaced; want exactly one", id, err, placedN)
		}
	}
}

// awaitAwaitingPayment waits until the order awaits payment (the saga of
// whichever instance holds the lease has reserved its stock). A query an
// instance killed meanwhile took is never answered, so each query gets a
// deadline of its own.
func awaitAwaitingPayment(ctx context.Context, client *ordonats.Client, id string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := client.GetOrder(qctx, id)
		cancel()
		if err == nil && v.State == domain.StateAwaitingPayment {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("order %s not awaiting payment after %s: %+v, %v", id, within, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startLifecycles drives n fresh orders through lifecycle in the
// background, the i-th of kind i%4, at most clients at a time (a bounded
// load). It returns the orders' IDs, the count of lifecycles finished, and
// a wait for all of them; a lifecycle's error fails the test.
func startLifecycles(ctx context.Context, t testing.TB, n, clients int, lifecycle func(ctx context.Context, id string, kind int) error) (ids []string, done *atomic.Int64, wait func()) {
	ids = make([]string, n)
	done = new(atomic.Int64)
	var wg sync.WaitGroup
	sem := make(chan struct{}, clients)
	for i := range ids {
		ids[i] = uuid.NewString()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := lifecycle(ctx, ids[i], i%4); err != nil {
				t.Errorf("order %s: %v", ids[i], err)
			}
			done.Add(1)
		}()
	}
	return ids, done, wg.Wait
}

// sendUntilAnswered sends a command with f, under one command ID for every
// attempt, until it is answered (at most 20 attempts of 5 s each), so a
// command an instance took before it was killed or froze is applied once
// all the same.
func sendUntilAnswered(ctx context.Context, what string, f func(ctx context.Context, opt ordonats.SendOption) error) error {
	opt := ordonats.WithCommandID(uuid.NewString())
	var err error
	for range 20 {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = f(actx, opt)
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
