//go:build containers

package containers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestThroughput measures commands/s of the order lifecycle
// (`ordo-bench lifecycle`, from the host, on the 3-node NATS cluster) with
// one Ordo instance and with two, twice each, alternating, in one run. It is a measurement,
// not a check, so it runs only with ORDO_CONTAINERS_BENCH=1; the figures
// go to BENCHMARKS.md.
func TestThroughput(t *testing.T) {
	if os.Getenv("ORDO_CONTAINERS_BENCH") != "1" {
		t.Skip("a measurement: set ORDO_CONTAINERS_BENCH=1 to run it")
	}
	bench := filepath.Join(t.TempDir(), "ordo-bench")
	build := exec.Command("go", "build", "-o", bench, "./cmd/ordo-bench")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ordo-bench: %v\n%s", err, out)
	}
	c := startCluster(t)
	urls := make([]string, len(c.nats))
	for i, n := range c.nats {
		urls[i] = "nats://" + n.addr("4222/tcp")
	}
	runs := 0
	run := func(instances int) {
		runs++
		// The stock API answers only on the lease holder, which may have
		// just changed: wait for it, so that the bench's own stock add
		// succeeds and its orders are reserved rather than cancelled.
		waitFor(t, 2*time.Minute, "the stock API answers", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.client.AddStock(ctx, "sku-1", 1_000_000_000, fmt.Sprintf("containers-bench-%d", runs))
			return err == nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bench, "lifecycle", "--nats-url", strings.Join(urls, ","),
			"--clients", "32", "--duration", "10s", "--bare=false").CombinedOutput()
		if err != nil {
			t.Fatalf("ordo-bench lifecycle with %d instance(s): %v\n%s", instances, err, out)
		}
		t.Logf("throughput with %d ordo serve on 3 NATS nodes (load %s):\n%s", instances, loadAvg(), out)
	}
	// Alternating pairs, so that a change in the machine's other load
	// shows as a difference between the pairs rather than skewing the ratio.
	for range 2 {
		timeout := 10
		if _, err := provider.Client().ContainerStop(ctxT(t, time.Minute), c.ordo[1].c.GetContainerID(), client.ContainerStopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		run(1)
		c.start(c.ordo[1])
		c.awaitReady(c.ordo[1], 2*time.Minute)
		run(2)
	}
}

// loadAvg is the machine's load average (BENCHMARKS.md quotes it beside
// the figures).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
