package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchHotSKU runs the hot-SKU bench briefly, Ordo only, against its
// own embedded service: reservations succeed, and the oversell check ran
// against both the service's view and a replay of the stream.
func TestBenchHotSKU(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	if err := run(ctx, []string{"bench", "hot-sku", "--clients", "2", "--duration", "1s", "--orders", "1000", "--compare=false", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var rep hotSKUReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	o, c := rep.Ordo, rep.Ordo.Check
	if o.Ops == 0 || o.Errors != 0 || o.Ambiguous != 0 || o.PerSec <= 0 {
		t.Fatalf("ordo result %+v, want reservations without errors", o.LoadResult)
	}
	if o.CPUPerOp <= 0 {
		t.Fatalf("cpu per reservation %v, want it measured", o.CPUPerOp)
	}
	if !c.Ran || !c.OK || !c.Folded || len(c.Problems) > 0 {
		t.Fatalf("oversell check %+v, want it run, folded and ok", c)
	}
	if c.Successes != int64(o.Ops) || c.Stock.Reserved != c.Successes || c.Reserved != c.Successes || c.FoldedView != c.Stock {
		t.Fatalf("check: %d successes, %d ops, service says %+v, replay %+v with %d reservations", c.Successes, o.Ops, c.Stock, c.FoldedView, c.Reserved)
	}
	if c.Appends < 1 || c.Appends > c.Reserved {
		t.Fatalf("%d appends for %d reservations", c.Appends, c.Reserved)
	}
	if rep.Bare == nil || rep.Bare.Ops == 0 || rep.Ratios["ordo_per_bare_request_reply"] <= 0 {
		t.Fatalf("bare request-reply %+v, ratios %v", rep.Bare, rep.Ratios)
	}
	if rep.Redis.Skipped == "" || rep.Postgres.Skipped == "" {
		t.Fatalf("--compare=false still ran a classic system: %+v %+v", rep.Redis, rep.Postgres)
	}
}

// TestHotSKUCheckCatchesOversell feeds the check's failure path: a report
// whose reserved count exceeds the successful reservations must fail.
func TestHotSKUCheckCatchesOversell(t *testing.T) {
	rep := hotSKUReport{Ordo: hotSKUOrdo{Check: hotSKUCheck{Ran: true, Problems: []string{"reserved 11, but 10 reservations succeeded"}}}}
	if err := hotSKUFailure(rep); err == nil || !strings.Contains(err.Error(), "reserved 11") {
		t.Fatalf("hotSKUFailure: %v, want the problem reported", err)
	}
	rep.Ordo.Check = hotSKUCheck{Ran: true, OK: true}
	rep.Redis = hotSKUClassic{Result: &rep.Ordo.LoadResult, Check: "counter off by one"}
	if err := hotSKUFailure(rep); err == nil || !strings.Contains(err.Error(), "redis: counter off by one") {
		t.Fatalf("hotSKUFailure: %v, want the Redis check reported", err)
	}
}

// TestRESPConn checks the minimal RESP client's reply parsing.
func TestRESPConn(t *testing.T) {
	for _, tc := range []struct {
		wire string
		want any
	}{
		{"+OK\r\n", "OK"},
		{":-1\r\n", int64(-1)},
		{"$5\r\nhello\r\n", "hello"},
		{"*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n", []any{"appendfsync", "always"}},
	} {
		rc := &respConn{r: bufio.NewReader(strings.NewReader(tc.wire))}
		got, err := rc.read(0)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("read %q: got %#v, %v; want %#v", tc.wire, got, err, tc.want)
		}
	}
	rc := &respConn{r: bufio.NewReader(strings.NewReader("-NOSCRIPT No matching script\r\n"))}
	if _, err := rc.read(0); err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
		t.Fatalf("error reply: %v", err)
	}
}

// TestProcStat reads this process's /proc stat: the parent's pid where
// stat(5) puts it, whatever the command name holds.
func TestProcStat(t *testing.T) {
	f := procStat(os.Getpid())
	if len(f) < 15 || f[1] != strconv.Itoa(os.Getppid()) {
		t.Fatalf("procStat: %q, want the parent %d second", f, os.Getppid())
	}
	if got := clusterCPU(filepath.Join(t.TempDir(), "postmaster.pid")); got != 0 {
		t.Fatalf("clusterCPU without a cluster: %v, want 0", got)
	}
}
