package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
)

// exitOf is the exit status ordo would end with for err.
func exitOf(err error) int { return exitCode(err, new(strings.Builder)) }

// TestReadOnlyCommandsCreateNothing: with no store in --data, the commands
// that read say so, exit 2 and create nothing; import creates nothing when
// its input is missing.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	ctx := testCtx(t)
	root := t.TempDir()
	data := filepath.Join(root, "ordo-data")
	out := filepath.Join(root, "backup.jsonl")
	for _, args := range [][]string{
		{"verify"},
		{"replay", "--all"},
		{"export", "--out", out},
		{"history", "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a"},
		{"state", "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a", "--at", "1"},
		{"migrate", "--to", "esdb://127.0.0.1:1?tls=false"},
		{"eventstore", "check"},
	} {
		t.Run(args[0], func(t *testing.T) {
			_, _, err := cli(ctx, append(args, "--data", data)...)
			want := "no event store at " + data + " (use --data or --esdb-url)"
			if err == nil || err.Error() != want || exitOf(err) != 2 {
				t.Fatalf("ordo %s on an empty directory: got %v (exit %d), want %q, exit 2", strings.Join(args, " "), err, exitOf(err), want)
			}
		})
	}
	_, _, err := cli(ctx, "import", filepath.Join(root, "missing.jsonl"), "--data", data)
	if err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Fatalf("import of a missing file: got %v, want an error naming it", err)
	}
	left, _ := os.ReadDir(root)
	if len(left) != 0 {
		t.Fatalf("the commands created %v in %s", left, root)
	}
}

// TestExtraArgumentsAreRefused: a command that takes no positional
// arguments refuses them (exit 2) instead of ignoring them.
func TestExtraArgumentsAreRefused(t *testing.T) {
	ctx := testCtx(t)
	data := t.TempDir()
	for _, args := range [][]string{
		{"verify", "extra"},
		{"replay", "--all", "extra"},
		{"export", "--out", filepath.Join(data, "x.jsonl"), "extra"},
		{"migrate", "--to", "esdb://127.0.0.1:1?tls=false", "extra"},
		{"eventstore", "check", "extra"},
		{"history", "id-1", "extra"},
	} {
		_, _, err := cli(ctx, append(args, "--data", data)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "extra") {
			t.Errorf("ordo %s: got %v, want a usage error naming the extra argument", strings.Join(args, " "), err)
		}
	}
}

// TestServeRefusesNonPositiveDurations: --payment-timeout 0 or negative is
// refused, not replaced by the default.
func TestServeRefusesNonPositiveDurations(t *testing.T) {
	for _, args := range [][]string{
		{"--payment-timeout", "0"},
		{"--payment-timeout", "-1m"},
		{"--read-wait", "0s"},
		{"--callback-tolerance", "0"},
		{"--callback-tolerance", "-5m"},
	} {
		_, _, err := cli(context.Background(), append([]string{"serve", "--data", t.TempDir()}, args...)...)
		if exitOf(err) != 2 || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("serve %s: got %v, want a usage error about %s", strings.Join(args, " "), err, args[0])
		}
	}
}

// TestStockAddNegativeQuantity: a negative quantity is a clear usage
// error, not "flag provided but not defined".
func TestStockAddNegativeQuantity(t *testing.T) {
	_, _, err := cli(context.Background(), "stock", "add", "sku-1", "-5", "--nats-url", "nats://127.0.0.1:1")
	if exitOf(err) != 2 || !strings.Contains(err.Error(), "QTY must be a positive whole number") || !strings.Contains(err.Error(), "-5") {
		t.Fatalf("stock add sku-1 -5: got %v", err)
	}
}

// TestStateAtRevisionPastTheEnd: --at a revision the order never reached
// is an error.
func TestStateAtRevisionPastTheEnd(t *testing.T) {
	dir := t.TempDir()
	ids := populate(t, dir, 4)
	ctx := testCtx(t)
	id := ids[3] // placed, reserved, paid, cancelled with a refund: revisions 0 to 4
	if _, _, err := cli(ctx, "state", id, "--at", "4", "--data", dir); err != nil {
		t.Fatalf("state --at its last revision: %v", err)
	}
	_, _, err := cli(ctx, "state", id, "--at", "999", "--data", dir)
	if err == nil || !strings.Contains(err.Error(), "no revision 999") || exitOf(err) == 0 {
		t.Fatalf("state --at 999: got %v, want an error", err)
	}
}

// TestSecondOpenerIsRefused: while a service runs on a data directory, a
// second service and `ordo eventstore serve` on its store fail at once
// naming the holder; a tool that cannot reach the service (serve.json
// gone) does too.
func TestSecondOpenerIsRefused(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	cfg := serve.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0", ManualStock: true}
	svc, err := serve.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	inUse := "data directory " + dir + " is in use by pid " + strconv.Itoa(os.Getpid())
	if _, err := serve.Start(ctx, cfg); err == nil || !strings.Contains(err.Error(), inUse) {
		t.Fatalf("a second service on the same directory: got %v, want %q", err, inUse)
	}
	store := filepath.Join(dir, "eventstore")
	_, _, err = cli(ctx, "eventstore", "serve", "--data", store, "--listen", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "data directory "+store+" is in use by pid") {
		t.Fatalf("eventstore serve on the service's store: got %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "serve.json")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(ctx, "verify", "--data", dir); err == nil || !strings.Contains(err.Error(), inUse) {
		t.Fatalf("verify on a directory in use: got %v, want %q", err, inUse)
	}
	if _, _, err := cli(ctx, "eventstore", "check", "--data", dir); err == nil || !strings.Contains(err.Error(), "in use by pid") {
		t.Fatalf("eventstore check of a store in use: got %v", err)
	}
}

// TestSagaCheckpointBeyondTheHeadIsRefused: a saga checkpoint past the
// store's head stops the service from starting, saying what to do.
func TestSagaCheckpointBeyondTheHeadIsRefused(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir, 2)
	if err := os.WriteFile(filepath.Join(dir, "saga.checkpoint"), []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	svc, err := serve.Start(ctx, serve.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0"})
	if err == nil {
		svc.Shutdown(context.Background())
		t.Fatal("the service started with its saga checkpoint beyond the store's head")
	}
	for _, want := range []string{"saga checkpoint 1234 is beyond the event store's head", "delete the saga's checkpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	out, _, err := cli(ctx, "eventstore", "check", "--data", dir)
	if exitOf(err) != 1 || !strings.Contains(out, "saga checkpoint 1234 is beyond") {
		t.Fatalf("eventstore check: %v\n%s", err, out)
	}
}

// TestEventstoreCheck: check passes a sound store, finds a truncated
// write-ahead log (exit 1), and --accept-loss lets the store open again.
func TestEventstoreCheck(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir, 30)
	ctx := testCtx(t)
	out, _, err := cli(ctx, "eventstore", "check", "--data", dir)
	if err != nil || !strings.Contains(out, "no damage found") {
		t.Fatalf("check of a sound store: %v\n%s", err, out)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "eventstore", "*.log"))
	var newest string
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > 0 {
			newest = l
		}
	}
	fi, _ := os.Stat(newest)
	if err := os.Truncate(newest, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(ctx, "verify", "--data", dir); err == nil || !strings.Contains(err.Error(), "missing acknowledged events") {
		t.Fatalf("verify of a store that lost events: got %v", err)
	}
	out, _, err = cli(ctx, "eventstore", "check", "--data", dir)
	if exitOf(err) != 1 || !strings.Contains(out, "acknowledged events are missing") || !strings.Contains(out, "--accept-loss") {
		t.Fatalf("check after truncating the log: %v\n%s", err, out)
	}
	out, _, err = cli(ctx, "eventstore", "check", "--data", dir, "--accept-loss")
	if err != nil || !strings.Contains(out, "accepted") {
		t.Fatalf("check --accept-loss: %v\n%s", err, out)
	}
	if out, _, err := cli(ctx, "verify", "--data", dir, "--quiet"); err != nil {
		t.Fatalf("verify after accepting the loss: %v\n%s", err, out)
	}
}
