package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeOrderID(t *testing.T) {
	upper := strings.ToUpper(testOrder)
	mixed := testOrder[:9] + strings.ToUpper(testOrder[9:20]) + testOrder[20:]
	for _, tt := range []struct {
		in, want  string
		ok, canon bool
	}{
		{testOrder, testOrder, true, true},
		{upper, testOrder, true, false},
		{mixed, testOrder, true, false},
		{"42", "42", false, false},
		{"", "", false, false},
		{strings.ReplaceAll(testOrder, "-", "_"), strings.ReplaceAll(testOrder, "-", "_"), false, false},
		{"0B6F7C1E-3F4A-4A53-9A7E-2F1F5D0C9B1G", "0B6F7C1E-3F4A-4A53-9A7E-2F1F5D0C9B1G", false, false},
	} {
		got, ok := NormalizeOrderID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeOrderID(%q) = %q, %t; want %q, %t", tt.in, got, ok, tt.want, tt.ok)
		}
		if c := IsCanonicalOrderID(tt.in); c != tt.canon {
			t.Errorf("IsCanonicalOrderID(%q) = %t, want %t", tt.in, c, tt.canon)
		}
	}
}

// TestDecodeCommandCanonicalOrderID: the same UUID in any case decodes
// to one order; a command built with another spelling is refused, never
// taken for a second order.
func TestDecodeCommandCanonicalOrderID(t *testing.T) {
	upper := strings.ToUpper(testOrder)
	bodies := map[string]string{
		CmdPlaceOrder:        `{"order_id":"` + upper + `","customer_id":"c","currency":"EUR","lines":[{"sku":"a","quantity":1,"unit_price":5}]}`,
		CmdMarkStockReserved: `{"order_id":"` + upper + `"}`,
		CmdMarkStockRejected: `{"order_id":"` + upper + `","reason":"r"}`,
		CmdConfirmPayment:    `{"order_id":"` + upper + `","payment_id":"p","amount":5}`,
		CmdFailPayment:       `{"order_id":"` + upper + `","payment_id":"p"}`,
		CmdCancelOrder:       `{"order_id":"` + upper + `","reason":"r"}`,
		CmdShipOrder:         `{"order_id":"` + upper + `","carrier":"c","tracking_number":"t"}`,
		CmdConfirmDelivery:   `{"order_id":"` + upper + `"}`,
		CmdCompleteOrder:     `{"order_id":"` + upper + `"}`,
		CmdRequestRefund:     `{"order_id":"` + upper + `","refund_id":"r","amount":5,"reason":"r"}`,
		CmdCompleteRefund:    `{"order_id":"` + upper + `","refund_id":"r"}`,
		CmdRejectRefund:      `{"order_id":"` + upper + `","refund_id":"r","reason":"r"}`,
		CmdExpirePayment:     `{"order_id":"` + upper + `","deadline":"2026-01-01T00:00:00Z"}`,
		CmdPaymentCallback:   `{"order_id":"` + upper + `","payment_id":"p","amount":5,"currency":"EUR","status":"succeeded"}`,
	}
	for _, typ := range append(CommandTypes(), CmdPaymentCallback) {
		body, ok := bodies[typ]
		if !ok {
			t.Errorf("no upper-case sample for %s", typ)
			continue
		}
		cmd, err := DecodeCommand(typ, []byte(body))
		if err != nil || cmd.OrderID() != testOrder {
			t.Errorf("%s with an upper-case order ID: got %v, %v; want order %s", typ, cmd, err, testOrder)
		}
	}
	cb, err := DecodePaymentCallback([]byte(bodies[CmdPaymentCallback]))
	lower, _ := DecodePaymentCallback([]byte(strings.ReplaceAll(bodies[CmdPaymentCallback], upper, testOrder)))
	if err != nil || cb.Order != testOrder || cb.IdempotencyKey() != lower.IdempotencyKey() {
		t.Fatalf("callback with an upper-case order: %+v (key %s), %v; want order %s and key %s", cb, cb.IdempotencyKey(), err, testOrder, lower.IdempotencyKey())
	}
	// Built in Go with another spelling, a command does not validate.
	o := NewOrder(upper)
	_, err = o.Decide(PlaceOrder{Order: upper, CustomerID: "c", Currency: "EUR", Lines: []Line{{SKU: "a", Quantity: 1}}}, CommandMeta{CommandID: "c1"}, t0)
	var de *Error
	if !errors.As(err, &de) || de.Code != CodeInvalidCommand || de.Field != "order_id" {
		t.Fatalf("PlaceOrder with an upper-case ID: %v, want invalid_command on order_id", err)
	}
}
