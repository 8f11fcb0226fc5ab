package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

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
	var rep audit.Report
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
