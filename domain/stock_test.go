package domain

import (
	"errors"
	"testing"
)

const otherOrder = "5f0c6a43-52a4-4c4e-b0c7-5d8f00e1a2b3"

// decideApply runs a command against the stock and folds what it decides.
func decideApply(t *testing.T, s *Stock, cmd StockCommand) ([]EventData, error) {
	t.Helper()
	evs, err := s.Decide(cmd)
	for _, e := range evs {
		if aerr := s.Apply(e); aerr != nil {
			t.Fatalf("%T decided %T, which Apply refuses: %v", cmd, e, aerr)
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
