package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
)

// startForCLI starts the service on loopback ports (:0) in a temporary
// data directory, as edit configures it (nil: the defaults), for tests of
// the CLI commands that talk to it; it is shut down at cleanup.
func startForCLI(t *testing.T, ctx context.Context, edit func(*serve.Config)) *serve.Service {
	t.Helper()
	cfg := serve.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0"}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := serve.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	return svc
}

// TestOrderCLI drives `ordo order` against a running service, as a user
// would, and checks the --json contract.
func TestOrderCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := startForCLI(t, ctx, func(cfg *serve.Config) { cfg.ManualStock = true })
	url := svc.NATSURL()
	cli := func(args ...string) (map[string]any, error) {
		var out, errOut strings.Builder
		err := run(ctx, append(append([]string{"order"}, args...), "--nats-url", url, "--json"), &out, &errOut)
		var m map[string]any
		if jerr := json.Unmarshal([]byte(out.String()), &m); jerr != nil {
			t.Fatalf("ordo order %v printed %q (stderr %q), not JSON", args, out.String(), errOut.String())
		}
		return m, err
	}
	placed, err := cli("place", "--customer", "c-1", "--line", "sku-1:2:1250", "--line", "sku-2:1:500", "--currency", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"command_id", "order_id", "revision", "position", "events"} {
		if _, ok := placed[k]; !ok {
			t.Fatalf("place --json lacks %q: %v", k, placed)
		}
	}
	id := placed["order_id"].(string)
	if _, err := cli("stock-reserved", id); err != nil {
		t.Fatal(err)
	}
	paid, err := cli("pay", id, "--amount", "3000", "--payment-id", "pay-1", "--command-id", "cli-pay-1")
	if err != nil || paid["state"] != "paid" || paid["command_id"] != "cli-pay-1" {
		t.Fatalf("pay: %v %v", paid, err)
	}
	again, err := cli("pay", id, "--amount", "3000", "--payment-id", "pay-1", "--command-id", "cli-pay-1")
	if err != nil || again["duplicate"] != true || again["revision"] != paid["revision"] {
		t.Fatalf("pay again with the same command ID: %v %v", again, err)
	}
	failed, err := cli("deliver", id)
	if _, ok := err.(cliError); !ok || exitCode(err, &strings.Builder{}) != 1 {
		t.Fatalf("deliver before shipping: err %v, want exit status 1", err)
	}
	if e, ok := failed["error"].(map[string]any); !ok || e["code"] != "illegal_transition" {
		t.Fatalf("deliver before shipping printed %v", failed)
	}
	got, err := cli("get", id)
	if err != nil || got["order_id"] != id || got["state"] != "paid" || got["revision"] != float64(2) {
		t.Fatalf("get: %v %v", got, err)
	}
}
