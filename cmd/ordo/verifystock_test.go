package main

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

// TestVerifyCrossStream writes histories whose streams are each legal but
// do not fit together (an order awaiting payment with no stock reserved for
// it, or another quantity, or reserved too late, or released while the
// order counted on it) next to sound ones, and checks that verify reports
// exactly the former, and only for orders whose stock is Ordo's.
func TestVerifyCrossStream(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(dir, "eventstore")})
	if err != nil {
		t.Fatal(err)
	}
	codec := domain.NewCodec()
	// raw appends one event, in the order of the calls, so positions follow them.
	raw := func(stream, commandID string, d domain.EventData) {
		t.Helper()
		typ, data, meta, err := codec.Encode(domain.Event{Type: d.EventType(), Version: 1, Data: d, Meta: domain.EventMeta{CommandID: commandID}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, stream, eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	order := func(sku string, qty int64) string {
		id := uuid.NewString()
		raw(commands.StreamName(id), "place-"+id, domain.OrderPlaced{OrderID: id, CustomerID: "c",
			Lines: []domain.Line{{SKU: sku, Quantity: qty, UnitPrice: 100}}, Total: domain.Money{Amount: 100 * qty, Currency: "EUR"}})
		return id
	}
	markedByClient := func(id string) { raw(commands.StreamName(id), "client-"+uuid.NewString(), domain.StockReserved{}) }
	markedBySaga := func(id string) {
		raw(commands.StreamName(id), commands.SagaStockReservedID(id), domain.StockReserved{})
	}
	reserve := func(sku, id string, qty int64) {
		raw(domain.StockStream(sku), "r-"+id, domain.InventoryReserved{SKU: sku, OrderID: id, Quantity: qty})
	}
	release := func(sku, id string, qty int64) {
		raw(domain.StockStream(sku), "rel-"+id, domain.InventoryReleased{SKU: sku, OrderID: id, Quantity: qty})
	}
	orderEvent := func(id string, d domain.EventData) { raw(commands.StreamName(id), "c-"+uuid.NewString(), d) }

	raw(domain.StockStream("stocked"), "add-1", domain.InventoryAdded{SKU: "stocked", Quantity: 100})

	// The oversell: a client marks the order reserved at once; the
	// SKU is one Ordo stocks.
	oversold := order("stocked", 5)
	markedByClient(oversold)
	// The saga's own mark with nothing reserved (a SKU never stocked).
	sagaNoStock := order("never-stocked", 1)
	markedBySaga(sagaNoStock)
	// Another quantity than the lines.
	wrongQty := order("stocked", 3)
	reserve("stocked", wrongQty, 2)
	markedBySaga(wrongQty)
	// Reserved only after the order moved on.
	late := order("stocked", 1)
	markedByClient(late)
	reserve("stocked", late, 1)
	// Released while awaiting payment.
	releasedEarly := order("stocked", 2)
	reserve("stocked", releasedEarly, 2)
	markedBySaga(releasedEarly)
	release("stocked", releasedEarly, 2)

	// Sound: reserved, marked, cancelled, released.
	cancelled := order("stocked", 4)
	reserve("stocked", cancelled, 4)
	markedBySaga(cancelled)
	orderEvent(cancelled, domain.OrderCancelled{Reason: "changed my mind"})
	release("stocked", cancelled, 4)
	// Sound: reserved by a client (--manual-stock with Ordo's stock API), marked, paid, shipped, committed.
	shipped := order("stocked", 1)
	reserve("stocked", shipped, 1)
	markedByClient(shipped)
	orderEvent(shipped, domain.PaymentSucceeded{PaymentID: "p", Amount: domain.Money{Amount: 100, Currency: "EUR"}})
	orderEvent(shipped, domain.OrderShipped{Carrier: "dhl", TrackingNumber: "T"})
	raw(domain.StockStream("stocked"), "commit-"+shipped, domain.InventoryCommitted{SKU: "stocked", OrderID: shipped, Quantity: 1})
	// Sound under --manual-stock: the SKU has no stock stream, the mark is
	// the shop's; and a SKU Ordo began to stock only after the mark.
	manual := order("elsewhere", 2)
	markedByClient(manual)
	before := order("later", 1)
	markedByClient(before)
	raw(domain.StockStream("later"), "add-2", domain.InventoryAdded{SKU: "later", Quantity: 1})
	store.Close()

	verify := func(args ...string) (audit.Report, map[string]string) {
		t.Helper()
		out, _, err := cli(ctx, append([]string{"verify", "--data", dir, "--json", "--quiet"}, args...)...)
		var rep audit.Report
		if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
			t.Fatalf("verify %v: %v, %v\n%s", args, err, jerr, out)
		}
		if _, failed := err.(cliError); failed != (len(rep.Violations) > 0) {
			t.Fatalf("verify %v: error %v with %d violations", args, err, len(rep.Violations))
		}
		got := map[string]string{}
		for _, v := range rep.Violations {
			if v.Type != domain.EvtStockReserved || v.Revision != 1 {
				t.Errorf("violation %+v, want it on the StockReserved at revision 1", v)
			}
			got[strings.TrimPrefix(v.Stream, commands.StreamName(""))] = v.Reason
		}
		return rep, got
	}
	names := map[string]string{oversold: "oversold", sagaNoStock: "saga without stock", wrongQty: "wrong quantity", late: "reserved late",
		releasedEarly: "released early", cancelled: "cancelled", shipped: "shipped", manual: "manual", before: "stocked later"}
	check := func(got map[string]string, want map[string]string) {
		t.Helper()
		var g, w []string
		for id := range got {
			g = append(g, names[id])
		}
		for id := range want {
			w = append(w, names[id])
		}
		sort.Strings(g)
		sort.Strings(w)
		if strings.Join(g, ",") != strings.Join(w, ",") {
			t.Fatalf("violations for %v, want %v (%v)", g, w, got)
		}
		for id, words := range want {
			if !strings.Contains(got[id], words) {
				t.Errorf("%s: reason %q, want it to say %q", names[id], got[id], words)
			}
		}
	}
	rep, got := verify()
	if !rep.CrossChecked {
		t.Fatal("the whole store was read, but cross_stream_checked is false")
	}
	check(got, map[string]string{
		oversold:      "without a reservation: sku-stocked holds none for the order, whose lines need 5",
		sagaNoStock:   "sku-never-stocked holds none",
		wrongQty:      "2 reserved in sku-stocked, but its lines need 3",
		late:          "before sku-stocked reserved",
		releasedEarly: "released the order's reservation",
	})
	// --stock ordo: every order's stock is Ordo's, the shop's marks too.
	_, got = verify("--stock", "ordo")
	check(got, map[string]string{oversold: "holds none", sagaNoStock: "holds none", wrongQty: "lines need 3", late: "before",
		releasedEarly: "released", manual: "sku-elsewhere holds none", before: "sku-later holds none"})
	// A pass over some streams cannot tell a missing reservation from an unread one.
	if rep, _ := verify("--prefix", commands.StreamName(oversold)); rep.CrossChecked || len(rep.Violations) != 0 {
		t.Fatalf("verify --prefix: %+v, want no cross-stream check", rep)
	}
	if out, _, err := cli(ctx, "verify", "--data", dir, "--stock", "all"); exitCode(err, &strings.Builder{}) != 2 {
		t.Fatalf("verify --stock all: %v %s, want a usage error", err, out)
	}
}

// TestVerifyReportsASecondSpellingOfAnOrder: a stream written for an
// order ID in upper case (before IDs were made canonical, the same UUID
// made a second order) is reported, not trusted.
func TestVerifyReportsASecondSpellingOfAnOrder(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	store, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(dir, "eventstore")})
	if err != nil {
		t.Fatal(err)
	}
	upper := strings.ToUpper(uuid.NewString())
	typ, data, meta, err := domain.NewCodec().Encode(domain.Event{Type: domain.EvtOrderPlaced, Version: 1, Data: domain.OrderPlaced{OrderID: upper, CustomerID: "c",
		Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 100}}, Total: domain.Money{Amount: 100, Currency: "EUR"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, commands.StreamName(upper), eventstore.NoStream(), eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out, _, err := cli(ctx, "verify", "--data", dir, "--quiet")
	if _, failed := err.(cliError); !failed || !strings.Contains(out, commands.StreamName(upper)) || !strings.Contains(out, "lower case") {
		t.Fatalf("verify of an upper-case order stream: %v\n%s", err, out)
	}
}
