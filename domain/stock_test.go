package domain

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const otherOrder = "5f0c6a43-52a4-4c4e-b0c7-5d8f00e1a2b3"

// decideApply runs a command against the stock and folds what it decides.
func decideApply(tb testing.TB, s *Stock, cmd StockCommand) ([]EventData, error) {
	tb.Helper()
	evs, err := s.Decide(cmd)
	for _, e := range evs {
		if aerr := s.Apply(e); aerr != nil {
			tb.Fatalf("%T decided %T, which Apply refuses: %v", cmd, e, aerr)
		}
	}
	return evs, err
}

func TestStockDecide(t *testing.T) {
	tests := []struct {
		name      string
		setup     []StockCommand
		cmd       StockCommand
		wantEvent string // "" for no events
		wantCode  Code   // "" for no error
		wantView  StockView
	}{
		{"add", nil, AddStock{SKU: "s", Quantity: 5}, EvtInventoryAdded, "", StockView{OnHand: 5, Available: 5}},
		{"add nothing", nil, AddStock{SKU: "s", Quantity: 0}, "", CodeInvalidCommand, StockView{}},
		{"add to another SKU", nil, AddStock{SKU: "t", Quantity: 1}, "", CodeInvalidCommand, StockView{}},
		{"reserve", []StockCommand{AddStock{SKU: "s", Quantity: 5}}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 5},
			EvtInventoryReserved, "", StockView{OnHand: 5, Reserved: 5, Available: 0}},
		{"reserve more than available", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: otherOrder, Quantity: 3}},
			ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 3}, "", CodeOutOfStock, StockView{OnHand: 5, Reserved: 3, Available: 2}},
		{"reserve twice", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}},
			ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}, "", "", StockView{OnHand: 5, Reserved: 2, Available: 3}},
		{"reserve again with another quantity", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}},
			ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 3}, "", CodeReservationConflict, StockView{OnHand: 5, Reserved: 2, Available: 3}},
		{"reserve for an upper-case order ID", []StockCommand{AddStock{SKU: "s", Quantity: 5}},
			ReserveStock{SKU: "s", OrderID: strings.ToUpper(testOrder), Quantity: 1}, "", CodeInvalidCommand, StockView{OnHand: 5, Available: 5}},
		{"reserve after release", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}, ReleaseStock{SKU: "s", OrderID: testOrder}},
			ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}, "", CodeIllegalTransition, StockView{OnHand: 5, Available: 5}},
		{"reserve for a bad order ID", []StockCommand{AddStock{SKU: "s", Quantity: 5}}, ReserveStock{SKU: "s", OrderID: "x", Quantity: 1}, "", CodeInvalidCommand, StockView{OnHand: 5, Available: 5}},
		{"release", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}},
			ReleaseStock{SKU: "s", OrderID: testOrder}, EvtInventoryReleased, "", StockView{OnHand: 5, Available: 5}},
		{"release nothing", []StockCommand{AddStock{SKU: "s", Quantity: 5}}, ReleaseStock{SKU: "s", OrderID: testOrder}, "", "", StockView{OnHand: 5, Available: 5}},
		{"commit", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}},
			CommitStock{SKU: "s", OrderID: testOrder}, EvtInventoryCommitted, "", StockView{OnHand: 3, Available: 3}},
		{"commit twice", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}, CommitStock{SKU: "s", OrderID: testOrder}},
			CommitStock{SKU: "s", OrderID: testOrder}, "", "", StockView{OnHand: 3, Available: 3}},
		{"release after commit", []StockCommand{AddStock{SKU: "s", Quantity: 5}, ReserveStock{SKU: "s", OrderID: testOrder, Quantity: 2}, CommitStock{SKU: "s", OrderID: testOrder}},
			ReleaseStock{SKU: "s", OrderID: testOrder}, "", "", StockView{OnHand: 3, Available: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStock("s")
			for _, c := range tt.setup {
				if _, err := decideApply(t, s, c); err != nil {
					t.Fatalf("setup %T: %v", c, err)
				}
			}
			evs, err := decideApply(t, s, tt.cmd)
			if codeOrNone(err) != tt.wantCode {
				t.Fatalf("error %v, want code %q", err, tt.wantCode)
			}
			switch {
			case tt.wantEvent == "" && len(evs) != 0:
				t.Fatalf("events %v, want none", evs)
			case tt.wantEvent != "" && (len(evs) != 1 || evs[0].EventType() != tt.wantEvent):
				t.Fatalf("events %v, want one %s", evs, tt.wantEvent)
			}
			tt.wantView.SKU, tt.wantView.Revision = "s", s.Revision()
			if s.View() != tt.wantView {
				t.Fatalf("stock %+v, want %+v", s.View(), tt.wantView)
			}
		})
	}
}

// codeOrNone is CodeOf, with "" for no error.
func codeOrNone(err error) Code {
	if err == nil {
		return ""
	}
	return CodeOf(err)
}

// TestStockApplyRefusesOversell: a history written around Decide that would
// take available stock below zero, or settle a reservation twice, does not
// fold.
func TestStockApplyRefusesOversell(t *testing.T) {
	s := NewStock("s")
	if err := s.Apply(InventoryAdded{SKU: "s", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(InventoryReserved{SKU: "s", OrderID: testOrder, Quantity: 2}); err == nil {
		t.Fatal("a reservation beyond the available stock folded")
	}
	if err := s.Apply(InventoryReserved{SKU: "s", OrderID: testOrder, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(InventoryReleased{SKU: "s", OrderID: otherOrder, Quantity: 1}); err == nil {
		t.Fatal("a release of a reservation that does not exist folded")
	}
	if err := s.Apply(InventoryCommitted{SKU: "s", OrderID: testOrder, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(InventoryReleased{SKU: "s", OrderID: testOrder, Quantity: 1}); err == nil {
		t.Fatal("a committed reservation was released too")
	}
	if s.Available() != 0 || s.OnHand() != 0 || s.Revision() != 2 {
		t.Fatalf("stock %+v", s.View())
	}
	if !errors.Is(&Error{Code: CodeOutOfStock, Message: "x"}, ErrOutOfStock) {
		t.Fatal("ErrOutOfStock does not match out_of_stock errors")
	}
}

// TestStockBatch decides a mixed run of commands in one batch: the
// decisions are those of deciding the commands one at a time, the
// reservations between other events share one event each, and folding the
// batch's events, through the codec, into a fresh stock gives the batch's
// stock, revision included.
func TestStockBatch(t *testing.T) {
	orders := make([]string, 6)
	for i := range orders {
		orders[i] = fmt.Sprintf("5f0c6a43-52a4-4c4e-b0c7-5d8f00e1a2%02d", i)
	}
	cmds := []StockCommand{
		AddStock{SKU: "s", Quantity: 4},
		ReserveStock{SKU: "s", OrderID: orders[0], Quantity: 1},
		ReserveStock{SKU: "s", OrderID: orders[1], Quantity: 2},
		ReserveStock{SKU: "s", OrderID: orders[0], Quantity: 1}, // already reserved: nothing
		ReserveStock{SKU: "s", OrderID: orders[2], Quantity: 2}, // out of stock
		ReleaseStock{SKU: "s", OrderID: orders[1]},
		ReserveStock{SKU: "s", OrderID: orders[1], Quantity: 1}, // released before: refused
		ReserveStock{SKU: "s", OrderID: orders[3], Quantity: 1},
		CommitStock{SKU: "s", OrderID: orders[0]},
		ReserveStock{SKU: "s", OrderID: orders[4], Quantity: 1},
		ReserveStock{SKU: "s", OrderID: orders[5], Quantity: 1},
		ReserveStock{SKU: "x", OrderID: orders[5], Quantity: 1}, // another SKU: refused
	}
	one := NewStock("s")
	batched := NewStock("s")
	b := batched.NewBatch()
	for i, c := range cmds {
		meta := EventMeta{CommandID: fmt.Sprintf("c%d", i), CorrelationID: "corr", OccurredAt: t0}
		evs, wantErr := decideApply(t, one, c)
		typ, err := b.Decide(c, meta)
		if codeOrNone(err) != codeOrNone(wantErr) {
			t.Fatalf("command %d (%T): batch error %v, alone %v", i, c, err, wantErr)
		}
		if (typ == "") != (len(evs) == 0) || len(evs) == 1 && typ != evs[0].EventType() {
			t.Fatalf("command %d (%T): batch decided %q, alone %v", i, c, typ, evs)
		}
	}
	events := b.Events()
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := []string{EvtInventoryAdded, EvtInventoryReserved, EvtInventoryReleased, EvtInventoryReserved, EvtInventoryCommitted, EvtInventoryReserved}
	if !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	if r := events[3].Data.(InventoryReserved); r.OrderID != orders[3] || r.Quantity != 1 || r.Orders != nil || events[3].Meta.CommandID != "c7" {
		t.Fatalf("a run of one reservation: %+v %+v, want the one-order form under its own command", r, events[3].Meta)
	}
	r := events[1].Data.(InventoryReserved)
	wantOrders := []Reservation{{OrderID: orders[0], Quantity: 1, CommandID: "c1", CorrelationID: "corr"}, {OrderID: orders[1], Quantity: 2, CommandID: "c2", CorrelationID: "corr"}}
	if r.OrderID != "" || r.Quantity != 0 || !reflect.DeepEqual(r.Orders, wantOrders) || events[1].Meta.CommandID != "c1" {
		t.Fatalf("a run of two reservations: %+v %+v, want orders %+v under the first's metadata", r, events[1].Meta, wantOrders)
	}
	if one.Revision() != 7 || batched.Revision() != 5 {
		t.Fatalf("revisions: alone %d, batched %d; want 7 (8 events) and 5 (6 events)", one.Revision(), batched.Revision())
	}
	replayed := NewStock("s")
	for _, e := range events {
		typ, data, md, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(typ, data, md)
		if err != nil {
			t.Fatalf("decode %s %s: %v", typ, data, err)
		}
		if !reflect.DeepEqual(got.Data, e.Data) {
			t.Fatalf("%s round trip: got %+v, want %+v", typ, got.Data, e.Data)
		}
		if err := replayed.Apply(got.Data); err != nil {
			t.Fatal(err)
		}
	}
	wantView := one.View()
	wantView.Revision = 5
	if replayed.View() != batched.View() || batched.View() != wantView {
		t.Fatalf("replayed %+v, batched %+v, alone %+v (revision aside)", replayed.View(), batched.View(), one.View())
	}
	for _, o := range orders {
		q1, ok1 := one.Reservation(o)
		q2, ok2 := replayed.Reservation(o)
		if q1 != q2 || ok1 != ok2 {
			t.Fatalf("order %s: alone %d %v, replayed %d %v", o, q1, ok1, q2, ok2)
		}
	}
}

// TestInventoryReservedForms: the one-order form is written and read as
// before batching existed; the orders form folds all or nothing.
func TestInventoryReservedForms(t *testing.T) {
	stored := []byte(`{"sku":"s","order_id":"` + testOrder + `","quantity":2}`)
	_, data, _, err := EncodeEvent(Event{Type: EvtInventoryReserved, Data: InventoryReserved{SKU: "s", OrderID: testOrder, Quantity: 2}, Meta: EventMeta{CommandID: "c", OccurredAt: t0}})
	if err != nil || string(data) != string(stored) {
		t.Fatalf("one-order form encodes as %s (%v), want %s", data, err, stored)
	}
	e, err := DecodeEvent(EvtInventoryReserved, stored, []byte(`{"command_id":"c","occurred_at":"2026-11-01T12:00:00Z","schema_version":1}`))
	if err != nil || !reflect.DeepEqual(e.Data, InventoryReserved{SKU: "s", OrderID: testOrder, Quantity: 2}) {
		t.Fatalf("stored one-order event decodes as %+v, %v", e.Data, err)
	}
	s := NewStock("s")
	if err := s.Apply(InventoryAdded{SKU: "s", Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	before := s.View()
	for _, bad := range []InventoryReserved{
		{SKU: "s", Orders: []Reservation{{OrderID: testOrder, Quantity: 2}, {OrderID: otherOrder, Quantity: 2}}}, // oversells at the second
		{SKU: "s", Orders: []Reservation{{OrderID: testOrder, Quantity: 1}, {OrderID: testOrder, Quantity: 1}}},  // the same order twice
		{SKU: "s", OrderID: otherOrder, Quantity: 1, Orders: []Reservation{{OrderID: testOrder, Quantity: 1}}},   // both forms
	} {
		if err := s.Apply(bad); err == nil {
			t.Fatalf("%+v folded", bad)
		}
		if _, held := s.Reservation(testOrder); held || s.View() != before {
			t.Fatalf("after refusing %+v: stock %+v, want %+v and no reservation left behind", bad, s.View(), before)
		}
	}
	if err := s.Apply(InventoryReserved{SKU: "s", Orders: []Reservation{{OrderID: testOrder, Quantity: 1}, {OrderID: otherOrder, Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	if v := s.View(); v.Available != 0 || v.Reserved != 3 || v.Revision != 1 {
		t.Fatalf("after two orders in one event: %+v, want all 3 reserved at revision 1", v)
	}
}
