package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStockCLI drives `ordo stock` against a running service: add, a
// retried add, get in both formats, and the error contract.
func TestStockCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := startForCLI(t, ctx, nil)
	url := svc.NATSURL()
	cli := func(args ...string) (string, error) {
		var out, errOut strings.Builder
		err := run(ctx, append(append([]string{"stock"}, args...), "--nats-url", url), &out, &errOut)
		return out.String(), err
	}
	cliJSON := func(args ...string) (map[string]any, error) {
		out, err := cli(append(args, "--json")...)
		var m map[string]any
		if jerr := json.Unmarshal([]byte(out), &m); jerr != nil {
			t.Fatalf("ordo stock %v --json printed %q, not JSON", args, out)
		}
		return m, err
	}

	added, err := cliJSON("add", "sku-cli", "100", "--command-id", "delivery-1")
	if err != nil || added["on_hand"] != float64(100) || added["available"] != float64(100) || added["command_id"] != "delivery-1" {
		t.Fatalf("add: %v %v", added, err)
	}
	again, err := cliJSON("add", "--command-id", "delivery-1", "sku-cli", "100")
	if err != nil || again["on_hand"] != float64(100) || again["events"] != nil {
		t.Fatalf("add again with the same command ID: got %v %v, want on_hand 100 and no events", again, err)
	}
	if out, err := cli("add", "sku-cli", "20"); err != nil || !strings.Contains(out, "on hand 120") {
		t.Fatalf("add without --json: %q %v", out, err)
	}

	got, err := cliJSON("get", "sku-cli")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"sku": "sku-cli", "on_hand": float64(120), "reserved": float64(0), "available": float64(120), "revision": float64(1)}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("get --json: %s is %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if out, err := cli("get", "sku-cli"); err != nil || out != "sku-cli  on hand 120  reserved 0  available 120  revision 1\n" {
		t.Fatalf("get: %q %v", out, err)
	}
	// A SKU that never had stock is not found (exit status 1), not an
	// empty stock with revision -1; the error reply holds no stock fields.
	none, err := cliJSON("get", "sku-never-stocked")
	if e, ok := none["error"].(map[string]any); exitCode(err, &strings.Builder{}) != 1 || !ok || e["code"] != "not_found" || len(none) != 1 {
		t.Fatalf("get --json of a SKU without events: %v %v, want only a not_found error and exit status 1", none, err)
	}
	var stderr strings.Builder
	if out, err := cli("get", "sku-never-stocked"); exitCode(err, &stderr) != 1 || out != "" ||
		!strings.Contains(stderr.String(), "not_found") || !strings.Contains(stderr.String(), "ordo stock add sku-never-stocked") {
		t.Fatalf("get of a SKU without events: stdout %q, stderr %q, err %v; want exit status 1 and how to add stock", out, stderr.String(), err)
	}

	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"add", "sku-cli", "0"}, "invalid_command"},
		{[]string{"add", "sku cli", "5"}, "invalid_command"},
		{[]string{"get", "sku..cli"}, "invalid_command"},
	} {
		m, err := cliJSON(tc.args...)
		if _, ok := err.(cliError); !ok || exitCode(err, &strings.Builder{}) != 1 {
			t.Fatalf("ordo stock %v: err %v, want exit status 1", tc.args, err)
		}
		if e, ok := m["error"].(map[string]any); !ok || e["code"] != tc.code || e["message"] == "" {
			t.Fatalf("ordo stock %v printed %v, want error code %s", tc.args, m, tc.code)
		}
	}
	for _, args := range [][]string{{"add", "sku-cli", "many"}, {"add", "sku-cli"}, {"get"}, {"count", "sku-cli"}} {
		_, err := cli(args...)
		if exitCode(err, &strings.Builder{}) != 2 {
			t.Fatalf("ordo stock %v: err %v, want a usage error (exit 2)", args, err)
		}
	}
	var help strings.Builder
	if err := run(ctx, []string{"stock", "add", "--help"}, &strings.Builder{}, &help); exitCode(err, &strings.Builder{}) != 0 || !strings.Contains(help.String(), "Examples:") {
		t.Fatalf("stock add --help: %v %q", err, help.String())
	}
}
