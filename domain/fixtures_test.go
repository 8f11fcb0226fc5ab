package domain

import (
	"fmt"
	"testing"
	"time"
)

// Shared fixtures for the domain tests: one order of 1000 EUR (two lines),
// and histories that bring it to every state.

const testOrder = "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a"

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func eur(n int64) Money { return Money{n, "EUR"} }

func ev(data EventData) Event {
	return Event{Type: data.EventType(), Version: defaultCodec.schemas[data.EventType()].version, Data: data,
		Meta: EventMeta{CommandID: fmt.Sprintf("given-%s-%p", data.EventType(), &data), OccurredAt: t0}}
}

func placed() Event {
	return ev(OrderPlaced{OrderID: testOrder, CustomerID: "c-1", Total: eur(1000),
		Lines: []Line{{SKU: "sku-a", Quantity: 2, UnitPrice: 300}, {SKU: "sku-b", Quantity: 1, UnitPrice: 400}}})
}

func paid() []Event {
	return []Event{placed(), ev(StockReserved{}), ev(PaymentSucceeded{PaymentID: "p-1", Amount: eur(1000), Provider: "stripe"})}
}

// givenState returns a history ending in s. Where money was received, a
// refund "r-0" is pending, so refund commands have something to settle, and
// some money is still refundable.
func givenState(s State) []Event {
	pendingRefund := func(amount int64) Event {
		return ev(RefundRequested{RefundID: "r-0", Amount: eur(amount), Reason: "damaged"})
	}
	switch s {
	case StateNone:
		return nil
	case StatePlaced:
		return []Event{placed()}
	case StateAwaitingPayment:
		return []Event{placed(), ev(StockReserved{}),
			ev(PaymentAmountMismatched{PaymentID: "p-0", Amount: eur(500), Expected: eur(1000)}), pendingRefund(500)}
	case StatePaid:
		return append(paid(), pendingRefund(100))
	case StateShipped:
		return append(paid(), ev(OrderShipped{Carrier: "dhl", TrackingNumber: "t-1"}), pendingRefund(100))
	case StateDelivered:
		return append(paid(), ev(OrderShipped{Carrier: "dhl", TrackingNumber: "t-1"}), ev(OrderDelivered{}), pendingRefund(100))
	case StateCompleted:
		return append(paid(), ev(OrderShipped{Carrier: "dhl", TrackingNumber: "t-1"}), ev(OrderDelivered{}),
			ev(OrderCompleted{}), pendingRefund(100))
	case StateCancelled:
		return append(paid(), ev(OrderCancelled{Reason: "customer"}),
			ev(RefundRequested{RefundID: "auto-x", Amount: eur(1000), Automatic: true}),
			ev(RefundRejected{RefundID: "auto-x", Reason: "chargeback instead"}), pendingRefund(100))
	case StateRefunded:
		return append(paid(),
			ev(RefundRequested{RefundID: "r-full", Amount: eur(1000), Reason: "return"}),
			ev(RefundCompleted{RefundID: "r-full", Amount: eur(1000)}),
			ev(OrderRefunded{Amount: eur(1000)}),
			ev(PaymentSucceeded{PaymentID: "p-2", Amount: eur(500), Extra: true}),
			pendingRefund(200))
	}
	panic("no history for state " + string(s))
}

// fold builds an order from a history, failing the test on a refused event.
func fold(tb testing.TB, history []Event) *Order {
	tb.Helper()
	o := NewOrder(testOrder)
	for i, e := range history {
		if err := o.Apply(e); err != nil {
			tb.Fatalf("given event %d (%s): %v", i, e.Type, err)
		}
	}
	return o
}

// sampleCommand returns a valid command of each type for testOrder, taking
// the main path of its lifecycle row (fresh payment and refund IDs, the
// full order total, the pending refund r-0).
func sampleCommand(typ string) Command {
	switch typ {
	case CmdPlaceOrder:
		return PlaceOrder{Order: testOrder, CustomerID: "c-1", Currency: "EUR",
			Lines: []Line{{SKU: "sku-a", Quantity: 2, UnitPrice: 300}, {SKU: "sku-b", Quantity: 1, UnitPrice: 400}}}
	case CmdMarkStockReserved:
		return MarkStockReserved{Order: testOrder}
	case CmdMarkStockRejected:
		return MarkStockRejected{Order: testOrder, Reason: "out_of_stock", SKUs: []string{"sku-a"}}
	case CmdConfirmPayment:
		return ConfirmPayment{Order: testOrder, PaymentID: "p-new", Amount: 1000, Currency: "EUR", Provider: "stripe"}
	case CmdFailPayment:
		return FailPayment{Order: testOrder, PaymentID: "p-fail", Reason: "card declined"}
	case CmdCancelOrder:
		return CancelOrder{Order: testOrder, Reason: "customer asked"}
	case CmdShipOrder:
		return ShipOrder{Order: testOrder, Carrier: "dhl", TrackingNumber: "JD0001"}
	case CmdConfirmDelivery:
		return ConfirmDelivery{Order: testOrder}
	case CmdCompleteOrder:
		return CompleteOrder{Order: testOrder}
	case CmdRequestRefund:
		return RequestRefund{Order: testOrder, RefundID: "r-new", Amount: 50, Reason: "scratch"}
	case CmdCompleteRefund:
		return CompleteRefund{Order: testOrder, RefundID: "r-0"}
	case CmdRejectRefund:
		return RejectRefund{Order: testOrder, RefundID: "r-0", Reason: "not eligible"}
	case CmdExpirePayment:
		return ExpirePayment{Order: testOrder, Deadline: t0}
	}
	panic("no sample for " + typ)
}

func eventTypes(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}
