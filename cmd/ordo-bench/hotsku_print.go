package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// printHotSKU writes the report for a person to read.
func printHotSKU(w io.Writer, rep hotSKUReport) {
	fmt.Fprintf(w, "hot SKU %s: %d clients, %s each, 1 unit per reservation, %d units stocked\n\n", rep.SKU, rep.Clients, rep.Duration, int64(hotSKUStock))
	line := func(name string, r loadResult) {
		fmt.Fprintf(w, "%-34s %9.0f/s  p50 %9s  p99 %9s  (%d ok, %d errors)\n", name, r.PerSec, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Ops, r.Errors)
	}
	o := rep.Ordo
	line("ordo stock API (durable)", o.loadResult)
	fmt.Fprintf(w, "  %.1f cpu-µs per reservation (this whole process), load average %.2f\n", float64(o.CPUPerOp.Nanoseconds())/1e3, o.LoadAvg)
	c := o.Check
	switch {
	case c.OK:
		fmt.Fprintf(w, "  zero oversell: ok, reserved %d = successful reservations %d, available %d = on hand %d - reserved\n",
			c.Stock.Reserved, c.Successes, c.Stock.Available, c.Stock.OnHand)
	default:
		fmt.Fprintf(w, "  zero oversell: FAILED: %s\n", strings.Join(c.Problems, "; "))
	}
	if c.Folded {
		fmt.Fprintf(w, "  stream %s replays through the domain: %d reservations, revision %d\n", domain.StockStream(rep.SKU), c.Reserved, c.FoldedView.Revision)
		if c.Appends > 0 {
			fmt.Fprintf(w, "  %d durable appends carried them: %.1f reservations per append, one every %s\n",
				c.Appends, float64(c.Reserved)/float64(c.Appends), (o.Duration / time.Duration(c.Appends)).Round(time.Microsecond))
		}
	} else if c.FoldSkip != "" {
		fmt.Fprintf(w, "  stream replay skipped: %s\n", c.FoldSkip)
	}
	if o.Ambiguous > 0 {
		fmt.Fprintf(w, "  %d reservations got no outcome after %d attempts\n", o.Ambiguous, hotSKUAttempts)
	}
	if rep.Bare != nil {
		line("bare NATS request-reply", *rep.Bare)
	}
	for _, cl := range []struct {
		name string
		c    hotSKUClassic
	}{{"redis + lua (appendfsync always)", rep.Redis}, {"postgresql (synchronous_commit on)", rep.Postgres}} {
		if cl.c.Result == nil {
			fmt.Fprintf(w, "%-34s skipped: %s\n", cl.name, cl.c.Skipped)
			continue
		}
		line(cl.name, *cl.c.Result)
		if cl.c.ServerCPUPerOp > 0 {
			fmt.Fprintf(w, "  %.1f cpu-µs per reservation (server %.1f, this process's clients %.1f)\n",
				float64((cl.c.ServerCPUPerOp+cl.c.ClientCPUPerOp).Nanoseconds())/1e3,
				float64(cl.c.ServerCPUPerOp.Nanoseconds())/1e3, float64(cl.c.ClientCPUPerOp.Nanoseconds())/1e3)
		}
		fmt.Fprintf(w, "  %s; check: %s\n", cl.c.Setup, cl.c.Check)
	}
	fmt.Fprintln(w)
	for _, r := range []struct{ key, name string }{
		{"ordo_per_redis_lua", "Ordo / Redis+Lua"}, {"ordo_per_postgres", "Ordo / PostgreSQL"}, {"ordo_per_bare_request_reply", "Ordo / bare NATS request-reply"},
	} {
		if v, ok := rep.Ratios[r.key]; ok {
			fmt.Fprintf(w, "%-34s %9.2f×\n", r.name, v)
		}
	}
}
