package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// rebuildPosition is how far a rebuild into file got (0 if not begun).
func rebuildPosition(tb testing.TB, file string) uint64 {
	tb.Helper()
	if _, err := os.Stat(file); err != nil {
		return 0
	}
	// The replay that wrote it may have just closed it: its last connection
	// checkpoints the WAL on close, and a reader arriving then is told
	// SQLITE_BUSY unless it waits, as the service's own readers do.
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var pos uint64
	err = db.QueryRow(`SELECT position FROM projection_state WHERE name = ?`, projections.Name).Scan(&pos)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		tb.Fatalf("read the rebuild's position in %s: %v", file, err)
	}
	return pos
}

// dumpRows reads every row of the read models in dir through their queries.
func dumpRows(tb testing.TB, ctx context.Context, dir string, orders []string) string {
	tb.Helper()
	cur, err := os.ReadFile(filepath.Join(dir, "readmodels.current"))
	name := strings.TrimSpace(string(cur))
	if err != nil || name == "" {
		name = "readmodels.db"
	}
	s, err := projections.OpenSQLite(ctx, filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	rows, err := projectionstest.Dump(ctx, s, orders)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := json.Marshal(rows) // map keys are sorted: equal rows, equal text
	return string(b)
}

func TestReplayInterruptedResumes(t *testing.T) {
	dir := t.TempDir()
	ids := populate(t, dir, 600)
	ctx := testCtx(t)
	if out, _, err := cli(ctx, "replay", "--all", "--data", dir); err != nil {
		t.Fatalf("first replay: %v\n%s", err, out)
	}
	live := dumpRows(t, ctx, dir, ids)
	current, _ := os.ReadFile(filepath.Join(dir, "readmodels.current"))

	// Interrupt the next replay part-way, as Ctrl-C would: cancel once
	// the fresh read models have applied some events.
	partial := filepath.Join(dir, "readmodels.db")
	if strings.TrimSpace(string(current)) == "readmodels.db" {
		partial = filepath.Join(dir, "readmodels-rebuild.db")
	}
	short, cancel := context.WithCancel(ctx)
	replayReport.interval = time.Millisecond
	replayReport.hook = func(p projections.RebuildProgress) {
		if p.Events > 0 {
			cancel()
		}
	}
	_, _, err := cli(short, "replay", "--all", "--data", dir)
	cancel()
	replayReport.interval, replayReport.hook = 200*time.Millisecond, nil
	interrupted := err != nil && rebuildPosition(t, partial) > 0
	if err != nil && !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("interrupted replay: %v, want it to say it was interrupted", err)
	}
	if !interrupted {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the replay was not interrupted part-way (err %v; %s at position %d; current %q; files %v)", err, partial, rebuildPosition(t, partial), current, names)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "readmodels.current")); !bytes.Equal(now, current) {
		t.Fatal("an interrupted replay swapped the read models")
	}
	if got := dumpRows(t, ctx, dir, ids); got != live {
		t.Fatal("an interrupted replay changed the live read models")
	}
	at := rebuildPosition(t, partial)
	out, _, err := cli(ctx, "replay", "--all", "--data", dir)
	if err != nil {
		t.Fatalf("resumed replay: %v\n%s", err, out)
	}
	t.Logf("resumed from position %d: %s", at, strings.TrimSpace(out))
	resumed := dumpRows(t, ctx, dir, ids)
	if out, _, err := cli(ctx, "replay", "--all", "--restart", "--data", dir); err != nil {
		t.Fatalf("clean replay: %v\n%s", err, out)
	}
	if clean := dumpRows(t, ctx, dir, ids); clean != resumed || clean != live {
		t.Fatalf("resumed and clean rebuilds differ:\nresumed: %.400s\nclean:   %.400s", resumed, clean)
	}

	// --from would start the fresh read models after a position: swapped
	// in, they would lack every order placed before it. It is refused, and
	// the read models in use keep every order.
	var head uint64
	fmt.Sscan(strings.TrimSpace(strings.SplitAfter(strings.SplitAfter(out, "up to position ")[1], " ")[0]), &head)
	if head == 0 {
		t.Fatalf("no position in %q", out)
	}
	if out, _, err := cli(ctx, "replay", "--all", "--restart", "--from", fmt.Sprint(head), "--data", dir); err == nil || !strings.Contains(err.Error(), "from") {
		t.Fatalf("replay --from %d: %v, want a refusal naming from\n%s", head, err, out)
	}
	if got := dumpRows(t, ctx, dir, ids); got != live {
		t.Fatal("a refused replay --from changed the read models")
	}
}

func TestReplayThroughRunningService(t *testing.T) {
	dir := t.TempDir()
	ids := populate(t, dir, 30)
	ctx := testCtx(t)
	svc, err := serve.Start(ctx, serve.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0", ManualStock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	out, errOut, err := cli(ctx, "replay", "--projection", "orders", "--data", dir)
	if err != nil || !strings.Contains(out, "swapped in by the running service") {
		t.Fatalf("replay while the service runs: %v\n%s\n%s", err, out, errOut)
	}
	// The other commands reach the running service's store over loopback.
	if out, _, err := cli(ctx, "history", ids[3], "--data", dir); err != nil || !strings.Contains(out, "OrderCancelled") {
		t.Fatalf("history while the service runs: %v\n%s", err, out)
	}
	if out, _, err := cli(ctx, "verify", "--data", dir, "--quiet"); err != nil || !strings.Contains(out, "0 violations") {
		t.Fatalf("verify while the service runs: %v\n%s", err, out)
	}
	if _, _, err := cli(ctx, "replay", "--projection", "nope", "--data", dir); err == nil {
		t.Fatal("replay of an unknown projection: no error")
	}
	// The service's admin endpoints take only its admin token, which the
	// CLI read from the data directory above.
	wrong := filepath.Join(t.TempDir(), "wrong-token")
	if err := os.WriteFile(wrong, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := cli(ctx, "replay", "--all", "--data", dir, "--admin-token-file", wrong); err == nil || !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("replay with a wrong admin token: %v, want the service's refusal (unauthenticated)\n%s\n%s", err, out, errOut)
	}
}
