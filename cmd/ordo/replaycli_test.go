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
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
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
	var steps []step
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

func TestVerifyCatchesIllegalHistory(t *testing.T) {
	dir := t.TempDir()
	populate(t, dir, 30)
	ctx := testCtx(t)
	out, _, err := cli(ctx, "verify", "--data", dir, "--quiet")
	if err != nil || !strings.Contains(out, "0 violations") {
		t.Fatalf("verify of a sound store: %v\n%s", err, out)
	}

	// Write illegal histories around the domain, with the raw client.
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(dir, "eventstore")})
	if err != nil {
		t.Fatal(err)
	}
	codec := domain.NewCodec()
	raw := func(stream string, events ...domain.Event) {
		t.Helper()
		data := make([]eventstore.EventData, len(events))
		for i, e := range events {
			typ, d, m, err := codec.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			data[i] = eventstore.EventData{ID: uuid.New(), Type: typ, Data: d, Metadata: m}
		}
		if _, err := store.Append(ctx, stream, eventstore.Any(), data...); err != nil {
			t.Fatal(err)
		}
	}
	eur := func(n int64) domain.Money { return domain.Money{Amount: n, Currency: "EUR"} }
	placed := func(id string) domain.Event {
		return domain.Event{Type: domain.EvtOrderPlaced, Version: 1, Data: domain.OrderPlaced{OrderID: id, CustomerID: "c",
			Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 500}}, Total: eur(500)}}
	}
	shipped := uuid.NewString() // shipped without payment
	raw(commands.StreamName(shipped), placed(shipped), domain.Event{Type: domain.EvtOrderShipped, Version: 2, Data: domain.OrderShipped{Carrier: "x", TrackingNumber: "y"}})
	refund := uuid.NewString() // refunds more than was paid
	raw(commands.StreamName(refund), placed(refund), domain.Event{Type: domain.EvtStockReserved, Version: 1, Data: domain.StockReserved{}},
		domain.Event{Type: domain.EvtPaymentSucceeded, Version: 1, Data: domain.PaymentSucceeded{PaymentID: "p", Amount: eur(500)}},
		domain.Event{Type: domain.EvtRefundRequested, Version: 1, Data: domain.RefundRequested{RefundID: "r", Amount: eur(900), Reason: "?"}})
	wrongTotal := uuid.NewString()
	bad := placed(wrongTotal)
	p := bad.Data.(domain.OrderPlaced)
	p.Total = eur(1)
	bad.Data = p
	raw(commands.StreamName(wrongTotal), bad)
	// A SKU oversold: 1 unit, two reservations.
	stockEvents := []domain.EventData{domain.InventoryAdded{SKU: "rare", Quantity: 1},
		domain.InventoryReserved{SKU: "rare", OrderID: shipped, Quantity: 1}, domain.InventoryReserved{SKU: "rare", OrderID: refund, Quantity: 1}}
	for _, d := range stockEvents {
		raw(domain.StockStream("rare"), domain.Event{Type: d.EventType(), Version: 1, Data: d})
	}
	garbage := uuid.NewString()
	if _, err := store.Append(ctx, commands.StreamName(garbage), eventstore.NoStream(),
		eventstore.EventData{ID: uuid.New(), Type: domain.EvtOrderPlaced, Data: []byte(`{"total":"lots"}`)}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	out, _, err = cli(ctx, "verify", "--data", dir, "--json", "--quiet")
	if _, ok := err.(cliError); !ok {
		t.Fatalf("verify of an illegal history: %v, want exit status 1\n%s", err, out)
	}
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, out)
	}
	want := map[string]uint64{
		commands.StreamName(shipped):    1,
		commands.StreamName(refund):     3,
		commands.StreamName(wrongTotal): 0,
		commands.StreamName(garbage):    0,
		domain.StockStream("rare"):      2,
	}
	got := map[string]uint64{}
	for _, v := range rep.Violations {
		if v.Reason == "" || v.Type == "" {
			t.Errorf("violation without reason or type: %+v", v)
		}
		got[v.Stream] = v.Revision
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("violations at %v, want %v\n%s", got, want, out)
	}
	if rep.Streams != 34 || rep.SKUs != 1 || rep.Events == 0 {
		t.Errorf("verified %d order streams, %d stock streams and %d events, want 34 and 1", rep.Streams, rep.SKUs, rep.Events)
	}
	// The table form names them too, and --prefix narrows the pass.
	out, _, _ = cli(ctx, "verify", "--data", dir, "--quiet")
	if !strings.Contains(out, commands.StreamName(shipped)) || !strings.Contains(out, "5 violations") || !strings.Contains(out, "oversell") {
		t.Errorf("verify table:\n%s", out)
	}
	out, _, err = cli(ctx, "verify", "--data", dir, "--quiet", "--prefix", commands.StreamName(shipped))
	if _, ok := err.(cliError); !ok || !strings.Contains(out, "1 violations") || !strings.Contains(out, "in 1 order streams") {
		t.Errorf("verify --prefix: %v\n%s", err, out)
	}
}

// readAllEvents lists every event of a store by stream, for comparing.
func readAllEvents(t *testing.T, ctx context.Context, s *eventstore.Store) map[string][]eventstore.RecordedEvent {
	t.Helper()
	out := map[string][]eventstore.RecordedEvent{}
	err := s.ReadAll(ctx, 0, eventstore.Filter{}, func(e eventstore.RecordedEvent) error {
		e.Position, e.Created = 0, time.Time{} // the store's own, never copied
		out[e.Stream] = append(out[e.Stream], e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExportImportMigrateRoundTrip(t *testing.T) {
	src := t.TempDir()
	populate(t, src, 40)
	ctx := testCtx(t)
	file := filepath.Join(t.TempDir(), "backup.jsonl")

	// An export cut off mid-line continues after its last complete line.
	if out, _, err := cli(ctx, "export", "--out", file, "--data", src); err != nil || !strings.Contains(out, "verified:") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	whole, _ := os.ReadFile(file)
	lines := bytes.Count(whole, []byte("\n"))
	cut := bytes.Index(whole[len(whole)/2:], []byte("\n")) + len(whole)/2 + 20 // mid-line
	if err := os.WriteFile(file, whole[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(ctx, "export", "--out", file, "--data", src)
	if err != nil || !strings.Contains(out, "verified:") {
		t.Fatalf("export resumed: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, whole) {
		t.Fatalf("the resumed export differs from a clean one (%d vs %d bytes)", len(again), len(whole))
	}

	// Import half, then all: the second run skips what is there.
	half := filepath.Join(t.TempDir(), "half.jsonl")
	firstHalf := whole[:bytes.Index(whole[len(whole)/2:], []byte("\n"))+len(whole)/2+1]
	if err := os.WriteFile(half, firstHalf, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if out, _, err := cli(ctx, "import", half, "--data", dst); err != nil {
		t.Fatalf("import of half: %v\n%s", err, out)
	}
	out, _, err = cli(ctx, "import", file, "--data", dst)
	wantSkipped := fmt.Sprintf("%d already present", bytes.Count(firstHalf, []byte("\n")))
	if err != nil || !strings.Contains(out, wantSkipped) || !strings.Contains(out, "verified:") {
		t.Fatalf("import after an interrupted one: %v, want %q\n%s", err, wantSkipped, out)
	}

	// Migrate to another server, twice: the second run appends nothing.
	target, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	out, _, err = cli(ctx, "migrate", "--data", src, "--to", target.URL())
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d appended", lines)) || !strings.Contains(out, "verified:") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	out, _, err = cli(ctx, "migrate", "--data", src, "--to", target.URL())
	if err != nil || !strings.Contains(out, "0 appended") {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}

	// Every store now holds the same streams, events, IDs, data and metadata.
	open := func(url string) *eventstore.Store {
		s, err := eventstore.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	embedded := func(dir string) map[string][]eventstore.RecordedEvent {
		s, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(dir, "eventstore")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return readAllEvents(t, ctx, s)
	}
	want := embedded(src)
	if len(want) != 40 {
		t.Fatalf("source has %d streams, want 40", len(want))
	}
	for name, got := range map[string]map[string][]eventstore.RecordedEvent{"imported": embedded(dst), "migrated": readAllEvents(t, ctx, open(target.URL()))} {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the %s store differs from the source", name)
		}
	}

	// A target that disagrees fails the verification.
	if _, err := open(target.URL()).Append(ctx, commands.StreamName(uuid.NewString()), eventstore.NoStream(),
		eventstore.EventData{ID: uuid.New(), Type: "Extra", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for stream := range want {
		if _, err := open(target.URL()).Append(ctx, stream, eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "Extra", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		break
	}
	out, _, err = cli(ctx, "migrate", "--data", src, "--to", target.URL())
	if _, ok := err.(cliError); !ok || !strings.Contains(out, "VERIFICATION FAILED: 1 streams differ") {
		t.Fatalf("migrate onto a diverged target: %v, want a failed verification naming one stream\n%s", err, out)
	}
}

// rebuildPosition is how far a rebuild into file got (0 if not begun).
func rebuildPosition(t *testing.T, file string) uint64 {
	t.Helper()
	if _, err := os.Stat(file); err != nil {
		return 0
	}
	// The replay that wrote it may have just closed it: its last connection
	// checkpoints the WAL on close, and a reader arriving then is told
	// SQLITE_BUSY unless it waits, as the service's own readers do.
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pos uint64
	err = db.QueryRow(`SELECT position FROM projection_state WHERE name = ?`, projections.Name).Scan(&pos)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("read the rebuild's position in %s: %v", file, err)
	}
	return pos
}

// dumpRows reads every row of the read models in dir through their queries.
func dumpRows(t *testing.T, ctx context.Context, dir string, orders []string) string {
	t.Helper()
	cur, err := os.ReadFile(filepath.Join(dir, "readmodels.current"))
	name := strings.TrimSpace(string(cur))
	if err != nil || name == "" {
		name = "readmodels.db"
	}
	s, err := projections.OpenSQLite(ctx, filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := projectionstest.Dump(ctx, s, orders)
	if err != nil {
		t.Fatal(err)
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
