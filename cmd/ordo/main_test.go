package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

// childArgsEnv makes this test binary act as the ordo command itself, with
// the JSON-encoded arguments it holds, so tests can run `ordo serve` as a
// real process and kill it (see ordoChild).
const childArgsEnv = "ORDO_TEST_CHILD_ARGS"

// TestMain runs the ordo command when the binary was started as a child,
// and otherwise the tests, removing the benchmarks' shared store at the end.
func TestMain(m *testing.M) {
	if enc := os.Getenv(childArgsEnv); enc != "" {
		os.Exit(runChild(enc))
	}
	code := m.Run()
	if benchStore.dir != "" && !benchStore.keep {
		os.RemoveAll(benchStore.dir)
	}
	os.Exit(code)
}

// runChild runs the ordo command with the arguments enc holds, as main does.
func runChild(enc string) int {
	var args []string
	if err := json.Unmarshal([]byte(enc), &args); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx, stop := signalContext()
	err := run(ctx, args, os.Stdout, os.Stderr)
	stop()
	return exitCode(err, os.Stderr)
}

// ordoChild is `ordo args…` as a child process of this test binary, not
// started yet.
func ordoChild(args ...string) *exec.Cmd {
	enc, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(enc))
	return cmd
}

func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// populate writes n orders through the command service into the embedded
// store of data directory dir, along every path of the lifecycle, with 16
// concurrent clients, and returns their IDs.
func populate(tb testing.TB, dir string, n int) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(dir, "eventstore")})
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	svc := commands.New(serve.CommandStore{Store: store}, commands.Options{})
	exec := func(cmd domain.Command) bool {
		body, _ := json.Marshal(cmd)
		id := uuid.NewString()
		res := svc.Execute(ctx, commands.Request{CommandID: id, CorrelationID: id, CommandType: cmd.CommandType(), OrderID: cmd.OrderID(), Body: body})
		if res.Err != nil {
			tb.Errorf("%s on %s: %v", cmd.CommandType(), cmd.OrderID(), res.Err)
		}
		return res.Err == nil
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				lifecycle(exec, ids[i], i)
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	return ids
}

// lifecycle takes order id along path i%6 of the lifecycle.
func lifecycle(exec func(domain.Command) bool, id string, i int) {
	total := int64(2500 + i)
	ok := exec(domain.PlaceOrder{Order: id, CustomerID: fmt.Sprintf("c-%d", i%7), Currency: "EUR",
		Lines: []domain.Line{{SKU: "sku-1", Quantity: 2, UnitPrice: 1250}, {SKU: "sku-2", Quantity: 1, UnitPrice: int64(i)}}})
	switch {
	case !ok, i%6 == 0: // stays placed
		return
	case i%6 == 1:
		exec(domain.MarkStockRejected{Order: id, Reason: "out_of_stock"})
		return
	}
	if !exec(domain.MarkStockReserved{Order: id}) {
		return
	}
	if i%6 == 2 {
		exec(domain.CancelOrder{Order: id, Reason: "customer changed their mind"})
		return
	}
	if !exec(domain.ConfirmPayment{Order: id, PaymentID: "pay-" + id, Amount: total, Provider: "acme"}) {
		return
	}
	if i%6 == 3 {
		exec(domain.CancelOrder{Order: id, Reason: "fraud check"}) // refund opened automatically
		return
	}
	if !exec(domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "T" + id[:8]}) || i%6 == 4 {
		return
	}
	_ = exec(domain.ConfirmDelivery{Order: id}) &&
		exec(domain.RequestRefund{Order: id, RefundID: "r1", Amount: 100, Reason: "scratched"}) &&
		exec(domain.CompleteRefund{Order: id, RefundID: "r1"})
}

// cli runs ordo with args and returns stdout, stderr and the error.
func cli(ctx context.Context, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}
