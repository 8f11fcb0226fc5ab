//go:build containers

package containers

import (
	"fmt"
	"testing"
	"time"
)

// Bounds of every scenario's load: clients, and orders per client at most
// (a scenario stops its load earlier, once its faults are healed and the
// load has moved on).
const (
	loadClients   = 6
	loadMaxOrders = 60
	flashStock    = 20
	flashOrders   = 40
	plentyOfStock = 100_000
	// progress is how many acknowledged commands count as the load
	// moving on.
	progress = 30
)

// TestCluster runs issue 17's scenarios one after the other on one
// topology (3 NATS nodes in a JetStream cluster, `ordo eventstore serve`,
// PostgreSQL, two `ordo serve`), each with its own SKUs and orders, a
// bounded load of placed, paid, shipped, refunded and cancelled orders and
// a flash sale, and each ending with the checks of checkAll. Each scenario
// leaves the topology whole for the next.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, c *cluster, l *load)
	}{
		{"lifecycle through both instances", lifecycleScenario},
		{"kill an ordo instance and start it again", killOrdoScenario},
		{"kill a NATS node, partition another and heal", natsFaultsScenario},
		{"restart the event store", storeRestartScenario},
	} {
		ok := t.Run(sc.name, func(t *testing.T) {
			defer c.use(t)()
			n := c.scenarios
			c.scenarios++
			sku, flash := fmt.Sprintf("sku-s%d", n), fmt.Sprintf("flash-s%d", n)
			ctx := ctxT(t, time.Minute)
			if _, err := c.client.AddStock(ctx, sku, plentyOfStock, "add-"+sku); err != nil {
				t.Fatalf("add stock to %s: %v", sku, err)
			}
			l := newLoad(c, sku, loadClients, loadMaxOrders)
			l.run()
			t.Cleanup(func() { l.stopNew.Store(true); l.wg.Wait() })
			l.awaitProgress(t, progress, "before the fault")
			sc.run(t, c, l)
			// The flash sale, once the topology is whole again.
			sale := flashSale(t, c, flash, flashStock, flashOrders)
			l.finish(t)
			orders := append(sale, l.all()...)
			c.checkAll(t, orders, map[string]int64{sku: plentyOfStock, flash: flashStock})
		})
		if !ok && c.broken {
			t.Fatalf("the topology is no longer whole after %q: the other scenarios cannot run", sc.name)
		}
	}
}

// lifecycleScenario: no fault; the load is spread over both instances by
// their shared durable consumer.
func lifecycleScenario(t *testing.T, c *cluster, l *load) {
	l.awaitProgress(t, progress, "through both instances")
}

// killOrdoScenario: `docker kill` the instance that holds the saga and
// stock lease, mid-load; the other takes its commands and the lease over;
// then it starts again and rejoins.
func killOrdoScenario(t *testing.T, c *cluster, l *load) {
	holder := c.sagaHolder()
	other := c.ordo[1-holder]
	c.broken = true
	at := time.Now()
	c.kill(c.ordo[holder])
	lease := make(chan time.Duration, 1)
	go func() {
		if c.awaitPart(other, "saga", "up", 2*time.Minute) < 0 {
			lease <- -1
			return
		}
		lease <- time.Since(at)
	}()
	inFlight, pause := l.recovery(t, at, progress)
	c.report(t, "docker kill of the ordo serve holding the saga lease (the other goes on)", inFlight, pause)
	if d := <-lease; d >= 0 {
		t.Logf("recovery: docker kill of the saga lease's holder: %s took the lease over %s after the kill", other.name, d.Round(time.Millisecond))
	} else {
		t.Errorf("%s did not take the saga lease over within 2 minutes of the holder's kill", other.name)
	}
	c.start(c.ordo[holder])
	ready := c.awaitReady(c.ordo[holder], 2*time.Minute)
	c.broken = false
	l.awaitProgress(t, progress, "with the killed instance back")
	t.Logf("recovery: the killed instance was ready %s after docker start", ready.Round(time.Millisecond))
}

// natsFaultsScenario: `docker kill` one NATS node, start it again; then cut
// another off the network and heal it.
func natsFaultsScenario(t *testing.T, c *cluster, l *load) {
	c.awaitNATSWhole(2 * time.Minute)
	c.broken = true
	at := time.Now()
	c.kill(c.nats[0])
	inFlight, pause := l.recovery(t, at, progress)
	c.report(t, "docker kill of one of 3 NATS nodes", inFlight, pause)
	c.start(c.nats[0])
	// Before another node is cut off, this one must have caught up and be
	// routed to both others: otherwise the two left would not make a
	// quorum and the streams would stall.
	whole := c.awaitNATSWhole(2 * time.Minute)
	t.Logf("recovery: the killed NATS node was current and routed to both others %s after docker start", whole.Round(time.Millisecond))
	l.awaitProgress(t, progress, "with the killed NATS node back")

	at = time.Now()
	c.disconnect(c.nats[1])
	inFlight, pause = l.recovery(t, at, progress)
	c.report(t, "partition of one of 3 NATS nodes (docker network disconnect)", inFlight, pause)
	at = time.Now()
	c.connectNode(c.nats[1])
	inFlight, pause = l.recovery(t, at, progress)
	c.report(t, "the partitioned NATS node healed", inFlight, pause)
	c.awaitNATSWhole(2 * time.Minute)
	c.broken = false
	t.Logf("recovery: the partitioned NATS node was current and routed to both others %s after the heal", time.Since(at).Round(time.Millisecond))
}

// storeRestartScenario: `docker restart` of the event store container.
func storeRestartScenario(t *testing.T, c *cluster, l *load) {
	c.broken = true
	at := time.Now()
	c.restart(c.store)
	c.broken = false
	inFlight, pause := l.recovery(t, at, progress)
	c.report(t, "docker restart of the event store", inFlight, pause)
}

// report logs a recovery time in one greppable line (BENCHMARKS.md quotes them).
func (c *cluster) report(t *testing.T, fault string, inFlight, pause time.Duration) {
	t.Logf("recovery: %s: every command in flight acknowledged %s after the fault; longest pause between acknowledgements %s",
		fault, inFlight.Round(time.Millisecond), pause.Round(time.Millisecond))
}

// use points the cluster's helpers at a scenario's test until the
// returned function restores the parent.
func (c *cluster) use(t *testing.T) func() {
	parent := c.t
	c.t = t
	return func() { c.t = parent }
}

// all returns every order the load started.
func (l *load) all() []*order {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*order, 0, len(l.orders))
	for _, o := range l.orders {
		out = append(out, o)
	}
	return out
}
