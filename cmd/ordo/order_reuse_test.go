package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
)

// TestOrderCLIRefusesReusedCommandID: `ordo order deliver B --command-id
// <the ID that paid A>` is refused with command_id_reused and exit status
// 1, in text and JSON, and B is not delivered.
func TestOrderCLIRefusesReusedCommandID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := startForCLI(t, ctx, func(cfg *serve.Config) { cfg.ManualStock = true })
	cli := func(args ...string) (string, string, error) {
		var out, errOut strings.Builder
		err := run(ctx, append(append([]string{"order"}, args...), "--nats-url", svc.NATSURL()), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, errOut, err := cli(args...)
		if err != nil {
			t.Fatalf("ordo order %v: %v (stderr %q)", args, err, errOut)
		}
		return strings.TrimSpace(out)
	}
	paidOrder := func(payCommandID string) string {
		id := mustCLI("place", "--customer", "c-1", "--line", "sku-1:1:900", "--currency", "EUR")
		mustCLI("stock-reserved", id)
		mustCLI("pay", id, "--amount", "900", "--payment-id", "p-"+id[:8], "--command-id", payCommandID)
		return id
	}
	paidOrder("pay-a")
	b := paidOrder("pay-b")
	mustCLI("ship", b, "--carrier", "dhl", "--tracking", "T1")

	out, errOut, err := cli("deliver", b, "--command-id", "pay-a")
	if code := exitCode(err, &strings.Builder{}); code != 1 || !strings.Contains(err.Error(), "command_id_reused") {
		t.Fatalf("deliver B under A's payment ID: exit %d, err %v, stdout %q, stderr %q; want exit 1 with command_id_reused", code, err, out, errOut)
	}
	out, _, err = cli("deliver", b, "--command-id", "pay-a", "--json")
	var reply struct {
		Error *struct{ Code string } `json:"error"`
	}
	if _, ok := err.(cliError); !ok || json.Unmarshal([]byte(out), &reply) != nil || reply.Error == nil || reply.Error.Code != "command_id_reused" {
		t.Fatalf("with --json: %q, %v; want {\"error\":{\"code\":\"command_id_reused\",…}} and exit 1", out, err)
	}
	if got := mustCLI("get", b); !strings.Contains(got, "state shipped") {
		t.Fatalf("order B after the refused deliveries: %q, want it still shipped", got)
	}
}
