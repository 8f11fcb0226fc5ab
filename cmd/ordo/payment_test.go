package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
)

// TestPaymentCallbackCLI sends callbacks with `ordo payment callback`,
// which signs them with the secret the service generated in its data
// directory; one signed with another secret is refused unauthenticated.
func TestPaymentCallbackCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	svc, err := serve.Start(ctx, serve.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0", ManualStock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	url := svc.NATSURL()
	cli := func(args ...string) (map[string]any, error) {
		t.Helper()
		var out, errOut strings.Builder
		err := run(ctx, append(args, "--nats-url", url, "--json"), &out, &errOut)
		var m map[string]any
		if jerr := json.Unmarshal([]byte(out.String()), &m); jerr != nil {
			t.Fatalf("ordo %v printed %q (stderr %q, %v), not JSON", args, out.String(), errOut.String(), err)
		}
		return m, err
	}
	placed, err := cli("order", "place", "--customer", "c-1", "--line", "sku-1:2:1250", "--currency", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	id := placed["order_id"].(string)
	if _, err := cli("order", "stock-reserved", id); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(wrong, []byte("not the service's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused, err := cli("payment", "callback", id, "--payment-id", "pi_cli", "--amount", "2500", "--currency", "EUR", "--provider", "stripe", "--secret-file", wrong)
	if e, ok := refused["error"].(map[string]any); err == nil || !ok || e["code"] != "unauthenticated" {
		t.Fatalf("a callback signed with another secret: %v %v, want unauthenticated", refused, err)
	}
	paid, err := cli("payment", "callback", id, "--payment-id", "pi_cli", "--amount", "2500", "--currency", "EUR", "--provider", "stripe", "--data", dir)
	if err != nil || paid["state"] != "paid" || paid["duplicate"] == true {
		t.Fatalf("payment callback: %v %v, want paid", paid, err)
	}
	again, err := cli("payment", "callback", id, "--payment-id", "pi_cli", "--amount", "2500", "--currency", "EUR", "--provider", "stripe", "--data", dir)
	if err != nil || again["duplicate"] != true || again["revision"] != paid["revision"] {
		t.Fatalf("the same callback again: %v %v, want the first outcome", again, err)
	}
	secret, err := os.ReadFile(filepath.Join(dir, "secrets", "callback-default"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(callbackSecretEnv, string(secret))
	viaEnv, err := cli("payment", "callback", id, "--payment-id", "pi_cli", "--amount", "2500", "--currency", "EUR", "--provider", "stripe", "--data", t.TempDir())
	if err != nil || viaEnv["duplicate"] != true {
		t.Fatalf("the callback signed with $%s: %v %v, want the first outcome", callbackSecretEnv, viaEnv, err)
	}
}
