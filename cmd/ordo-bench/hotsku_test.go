package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	if err := run(ctx, []string{"hot-sku", "--clients", "2", "--duration", "1s", "--orders", "1000", "--compare=false", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var rep hotSKUReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	o, c := rep.Ordo, rep.Ordo.Check
	if o.Ops == 0 || o.Errors != 0 || o.Ambiguous != 0 || o.PerSec <= 0 {
		t.Fatalf("ordo result %+v, want reservations without errors", o.loadResult)
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

// TestHotSKUClassics runs the classic answers briefly where they are
// installed: Redis+Lua on a redis-server the bench starts, PostgreSQL on
// a cluster started by the repository's launcher (.ci/postgres.sh, which
// CI also uses). Each either measured reservations and passed its check,
// or says why it was skipped; only a missing installation may skip.
func TestHotSKUClassics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and a PostgreSQL cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := hotSKUOptions{clients: 2, duration: 500 * time.Millisecond}
	for _, tc := range []struct {
		name, binary string
		bench        func(context.Context, hotSKUOptions, string) hotSKUClassic
	}{
		{"redis", "redis-server", benchRedisHotSKU},
		{"postgres", "initdb", benchPostgresHotSKU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "postgres" {
				t.Setenv("ORDO_BENCH_POSTGRES_DSN", "") // the launcher's own cluster, not one given
			}
			got := tc.bench(ctx, o, "test-sku")
			if _, err := exec.LookPath(tc.binary); err != nil && !postgresInLibDir(tc.binary) {
				if got.Result != nil || !strings.Contains(got.Skipped, "not installed") {
					t.Fatalf("without %s: %+v, want skipped as not installed", tc.binary, got)
				}
				t.Skipf("%s is not installed: %s", tc.binary, got.Skipped)
			}
			if got.Result == nil || got.Result.Ops == 0 || got.Result.Errors != 0 || !got.CheckOK {
				t.Fatalf("%s: %+v (result %+v), want reservations without errors and the check ok", tc.name, got, got.Result)
			}
			if got.ServerCPUPerOp <= 0 && got.ClientCPUPerOp <= 0 {
				t.Logf("%s: CPU per reservation not measured (ticks of 10 ms over a short run)", tc.name)
			}
		})
	}
}

// postgresInLibDir reports whether Debian's PostgreSQL is installed off
// PATH, where the launcher also looks.
func postgresInLibDir(binary string) bool {
	if binary != "initdb" {
		return false
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	return len(m) > 0
}

// TestHotSKUCheckCatchesOversell feeds the check's failure path: a report
// whose reserved count exceeds the successful reservations must fail.
func TestHotSKUCheckCatchesOversell(t *testing.T) {
	rep := hotSKUReport{Ordo: hotSKUOrdo{Check: hotSKUCheck{Ran: true, Problems: []string{"reserved 11, but 10 reservations succeeded"}}}}
	if err := hotSKUFailure(rep); err == nil || !strings.Contains(err.Error(), "reserved 11") {
		t.Fatalf("hotSKUFailure: %v, want the problem reported", err)
	}
	rep.Ordo.Check = hotSKUCheck{Ran: true, OK: true}
	rep.Redis = hotSKUClassic{Result: &rep.Ordo.loadResult, Check: "counter off by one"}
	if err := hotSKUFailure(rep); err == nil || !strings.Contains(err.Error(), "redis: counter off by one") {
		t.Fatalf("hotSKUFailure: %v, want the Redis check reported", err)
	}
}

// TestProcStat reads this process's /proc stat: the parent's pid where
// stat(5) puts it, whatever the command name holds; the CPU of a process
// tree includes a child's.
func TestProcStat(t *testing.T) {
	f := procStat(os.Getpid())
	if len(f) < 15 || f[1] != strconv.Itoa(os.Getppid()) {
		t.Fatalf("procStat: %q, want the parent %d second", f, os.Getppid())
	}
	if got := parentPID(os.Getpid()); got != os.Getppid() {
		t.Fatalf("parentPID: %d, want %d", got, os.Getppid())
	}
	if got := treeCPU(1 << 30); got != 0 {
		t.Fatalf("treeCPU of no process: %v, want 0", got)
	}
}
