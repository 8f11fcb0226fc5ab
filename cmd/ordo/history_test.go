package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/domain"
)

func TestHistoryAndState(t *testing.T) {
	dir := t.TempDir()
	ids := populate(t, dir, 6)
	ctx := testCtx(t)
	id := ids[5] // placed, reserved, paid, shipped, delivered, refund requested and completed

	out, _, err := cli(ctx, "history", id, "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"REV", "OrderPlaced", "StockReserved", "PaymentSucceeded", "OrderShipped", "OrderDelivered",
		"RefundRequested", "RefundCompleted", "carrier=dhl", "total=2505 EUR", "delivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("history table lacks %q:\n%s", want, out)
		}
	}
	out, _, err = cli(ctx, "history", "--json", id, "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	var steps []audit.Step
	if err := json.Unmarshal([]byte(out), &steps); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	wantStates := []domain.State{"placed", "awaiting_payment", "paid", "shipped", "delivered", "delivered", "delivered"}
	if len(steps) != len(wantStates) {
		t.Fatalf("history has %d steps, want %d", len(steps), len(wantStates))
	}
	for i, s := range steps {
		if s.Revision != uint64(i) || s.State != wantStates[i] || s.CommandID == "" || s.CorrelationID == "" || s.Problem != "" || s.Time.IsZero() {
			t.Errorf("step %d: %+v; want revision %d, state %s, command and correlation IDs, a time, no problem", i, s, i, wantStates[i])
		}
	}

	out, _, err = cli(ctx, "state", id, "--at", "2", "--json", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	var view domain.OrderView
	if err := json.Unmarshal([]byte(out), &view); err != nil || view.State != domain.StatePaid || view.Revision != 2 || view.Received.Amount != 2505 {
		t.Fatalf("state --at 2: %+v (%v), want paid at revision 2 with 2505 received", view, err)
	}
	at := steps[3].Time.Format(time.RFC3339Nano) // the shipment's own time
	out, _, err = cli(ctx, "state", id, "--at", at, "--json", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &view); err != nil || view.State != domain.StateShipped {
		t.Fatalf("state --at %s: %+v (%v), want shipped", at, view, err)
	}
	out, _, err = cli(ctx, "state", id, "--data", dir)
	if err != nil || !strings.Contains(out, "state delivered") || !strings.Contains(out, "refund r1") {
		t.Fatalf("state without --at: %v\n%s", err, out)
	}

	if _, _, err := cli(ctx, "history", uuid.NewString(), "--data", dir); err == nil || !strings.Contains(err.Error(), "no events") {
		t.Errorf("history of an unknown order: %v, want an error saying it has no events", err)
	}
	if _, _, err := cli(ctx, "state", id, "--at", "yesterday", "--data", dir); err == nil {
		t.Error("state --at yesterday: no error")
	} else if _, ok := err.(usageError); !ok {
		t.Errorf("state --at yesterday: %v, want a usage error", err)
	}
}
