package domain

import (
	"fmt"
	"testing"
)

// FuzzCommandSequence drives an order with an arbitrary sequence of
// commands built from the input bytes. Whatever happens: no panic, every
// decided event folds (so the history is one the FSM accepts), a fresh
// replay of the history gives the same order, and money stays consistent.
func FuzzCommandSequence(f *testing.F) {
	f.Add([]byte{0, 1, 3, 0, 7, 8, 9})
	f.Add([]byte{0, 1, 3, 1, 5, 0, 6, 0, 10, 0, 11, 0})
	f.Add([]byte{0, 1, 4, 3, 2, 5, 6, 3, 10, 1})
	f.Fuzz(func(t *testing.T, program []byte) {
		o := NewOrder(testOrder)
		var history []Event
		for i := 0; i+1 < len(program) && i < 200; i += 2 {
			cmd := fuzzCommand(program[i], program[i+1])
			events, _ := o.Decide(cmd, CommandMeta{CommandID: fmt.Sprintf("c%d", i)}, t0)
			for _, e := range events {
				if err := o.Apply(e); err != nil {
					t.Fatalf("step %d %s: decided %s does not fold: %v", i, cmd.CommandType(), e.Type, err)
				}
				history = append(history, e)
			}
			checkMoney(t, o)
		}
		replayed := NewOrder(testOrder)
		for _, e := range history {
			if err := replayed.Apply(e); err != nil {
				t.Fatalf("replay refused %s: %v", e.Type, err)
			}
		}
		if replayed.State() != o.State() || replayed.Revision() != o.Revision() || replayed.refunded != o.refunded {
			t.Fatalf("replay differs: %s/%d vs %s/%d", replayed.State(), replayed.Revision(), o.State(), o.Revision())
		}
	})
}

// fuzzCommand maps two bytes to a command: the first picks the type, the
// second its parameters (amounts, payment and refund IDs).
func fuzzCommand(op, arg byte) Command {
	amount := int64(arg%8) * 250 // 0..1750, around the 1000 total
	pid := fmt.Sprintf("p-%d", arg%3)
	rid := fmt.Sprintf("r-%d", arg%4)
	switch op % 13 {
	case 0:
		return sampleCommand(CmdPlaceOrder)
	case 1:
		return MarkStockReserved{Order: testOrder}
	case 2:
		return MarkStockRejected{Order: testOrder, Reason: "out_of_stock"}
	case 3:
		return ConfirmPayment{Order: testOrder, PaymentID: pid, Amount: 1000}
	case 4:
		return ConfirmPayment{Order: testOrder, PaymentID: pid, Amount: amount}
	case 5:
		return FailPayment{Order: testOrder, PaymentID: pid, Reason: "declined"}
	case 6:
		return CancelOrder{Order: testOrder, Reason: "fuzz"}
	case 7:
		return ShipOrder{Order: testOrder, Carrier: "c", TrackingNumber: "t"}
	case 8:
		return ConfirmDelivery{Order: testOrder}
	case 9:
		return CompleteOrder{Order: testOrder}
	case 10:
		return RequestRefund{Order: testOrder, RefundID: rid, Amount: amount, Reason: "fuzz"}
	case 11:
		return CompleteRefund{Order: testOrder, RefundID: rid}
	default:
		return RejectRefund{Order: testOrder, RefundID: rid, Reason: "fuzz"}
	}
}

// FuzzDecodeEvent feeds arbitrary bytes to the event decoder: an error is
// fine, a panic is not, and whatever decodes must encode again.
func FuzzDecodeEvent(f *testing.F) {
	for _, d := range []EventData{placed().Data, OrderShipped{Carrier: "c", TrackingNumber: "t"}, RefundRequested{RefundID: "r", Amount: eur(5)}} {
		typ, data, meta, _ := EncodeEvent(Event{Type: d.EventType(), Data: d, Meta: EventMeta{CommandID: "c", OccurredAt: t0}})
		f.Add(typ, data, meta)
	}
	f.Add(EvtOrderShipped, []byte(`{"tracking":1}`), []byte(`{"schema_version":1}`))
	f.Fuzz(func(t *testing.T, typ string, data, meta []byte) {
		e, err := DecodeEvent(typ, data, meta)
		if err != nil {
			return
		}
		if _, _, _, err := EncodeEvent(e); err != nil {
			t.Fatalf("decoded %s does not encode: %v", typ, err)
		}
	})
}

// FuzzDecodeCommand: arbitrary command bodies give a command or an error.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(CmdPlaceOrder, []byte(`{"order_id":"`+testOrder+`","customer_id":"c","currency":"EUR","lines":[{"sku":"a","quantity":1,"unit_price":5}]}`))
	f.Add(CmdConfirmPayment, []byte(`{"order_id":"`+testOrder+`","payment_id":"p","amount":-1}`))
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		cmd, err := DecodeCommand(typ, body)
		if err == nil && cmd.Validate() != nil {
			t.Fatalf("DecodeCommand returned an invalid command %#v", cmd)
		}
	})
}
