package domain

import (
	"errors"
	"reflect"
	"testing"
)

func callbackBody(status string) string {
	return `{"order_id":"` + testOrder + `","payment_id":"pi_123","amount":1000,"currency":"EUR","status":"` + status + `","provider":"stripe"}`
}

func TestDecodePaymentCallback(t *testing.T) {
	tests := []struct {
		name, body string
		want       Command
	}{
		{"succeeded", callbackBody("succeeded"),
			ConfirmPayment{Order: testOrder, PaymentID: "pi_123", Amount: 1000, Currency: "EUR", Provider: "stripe"}},
		{"failed", `{"order_id":"` + testOrder + `","payment_id":"pi_9","amount":1000,"currency":"EUR","status":"failed","reason":"card declined"}`,
			FailPayment{Order: testOrder, PaymentID: "pi_9", Reason: "card declined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCommand(CmdPaymentCallback, []byte(tt.body))
			if err != nil {
				t.Fatalf("got error %v, want %#v", err, tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodePaymentCallbackRejectsBadInput(t *testing.T) {
	o := `"order_id":"` + testOrder + `",`
	tests := []struct{ name, body, field string }{
		{"malformed JSON", `{"order_id":`, ""},
		{"not an object", `[1]`, ""},
		{"trailing data", `{}{}`, ""},
		{"unknown field", `{` + o + `"payment_id":"p","amount":1,"currency":"EUR","status":"succeeded","tip":5}`, "tip"},
		{"missing order", `{"payment_id":"p","amount":1,"currency":"EUR","status":"succeeded"}`, "order_id"},
		{"order not a UUID", `{"order_id":"42","payment_id":"p","amount":1,"currency":"EUR","status":"succeeded"}`, "order_id"},
		{"missing payment ID", `{` + o + `"amount":1,"currency":"EUR","status":"succeeded"}`, "payment_id"},
		{"payment ID with spaces", `{` + o + `"payment_id":"p 1","amount":1,"currency":"EUR","status":"succeeded"}`, "payment_id"},
		{"missing status", `{` + o + `"payment_id":"p","amount":1,"currency":"EUR"}`, "status"},
		{"unknown status", `{` + o + `"payment_id":"p","amount":1,"currency":"EUR","status":"pending"}`, "status"},
		{"zero amount", `{` + o + `"payment_id":"p","amount":0,"currency":"EUR","status":"succeeded"}`, "amount"},
		{"negative amount", `{` + o + `"payment_id":"p","amount":-5,"currency":"EUR","status":"failed"}`, "amount"},
		{"fractional amount", `{` + o + `"payment_id":"p","amount":10.5,"currency":"EUR","status":"succeeded"}`, "amount"},
		{"amount as string", `{` + o + `"payment_id":"p","amount":"10","currency":"EUR","status":"succeeded"}`, "amount"},
		{"missing currency", `{` + o + `"payment_id":"p","amount":1,"status":"succeeded"}`, "currency"},
		{"bad currency", `{` + o + `"payment_id":"p","amount":1,"currency":"euro","status":"succeeded"}`, "currency"},
		{"bad provider", `{` + o + `"payment_id":"p","amount":1,"currency":"EUR","status":"succeeded","provider":"a\nb"}`, "provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := DecodeCommand(CmdPaymentCallback, []byte(tt.body))
			var de *Error
			if !errors.As(err, &de) || de.Code != CodeInvalidCommand || de.Field != tt.field {
				t.Fatalf("got %#v, %v; want invalid_command on field %q", cmd, err, tt.field)
			}
		})
	}
}

func TestPaymentCallbackIdempotencyKey(t *testing.T) {
	cb := PaymentCallback{Order: testOrder, PaymentID: "pi_123", Amount: 1000, Currency: "EUR", Status: "succeeded", Provider: "stripe"}
	if got, want := cb.IdempotencyKey(), testOrder+"\nstripe\npi_123\nsucceeded"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	same := cb
	same.Amount, same.Reason = 999, "ignored" // the key is who reported what, not the details
	if same.IdempotencyKey() != cb.IdempotencyKey() {
		t.Fatal("the same payment report gave two keys")
	}
	for name, change := range map[string]func(*PaymentCallback){
		"status":   func(c *PaymentCallback) { c.Status = "failed" },
		"payment":  func(c *PaymentCallback) { c.PaymentID = "pi_124" },
		"provider": func(c *PaymentCallback) { c.Provider = "adyen" },
		"order":    func(c *PaymentCallback) { c.Order = "1b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a" },
	} {
		other := cb
		change(&other)
		if other.IdempotencyKey() == cb.IdempotencyKey() {
			t.Errorf("a different %s gave the same key", name)
		}
	}
}

// TestPaymentCallbacksThroughTheOrder: decoded callbacks get the payment
// rules of the order: a resent or reordered callback changes nothing, a late
// one on a cancelled order is recorded and refunded.
func TestPaymentCallbacksThroughTheOrder(t *testing.T) {
	succeeded, failed := callbackBody("succeeded"), callbackBody("failed")
	tests := []struct {
		name   string
		given  []Event
		bodies []string // decided and applied in turn; the last one's events are checked
		want   []string
	}{
		{"success pays", givenState(StateAwaitingPayment), []string{succeeded}, []string{EvtPaymentSucceeded}},
		{"resent success changes nothing", givenState(StateAwaitingPayment), []string{succeeded, succeeded}, nil},
		{"failure after success changes nothing", givenState(StateAwaitingPayment), []string{succeeded, failed}, nil},
		{"success after failure pays", givenState(StateAwaitingPayment), []string{failed, succeeded}, []string{EvtPaymentSucceeded}},
		{"late success on a cancelled order is refunded", []Event{placed(), ev(StockReserved{}), ev(OrderCancelled{Reason: "timeout"})},
			[]string{succeeded}, []string{EvtPaymentSucceeded, EvtRefundRequested}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fold(t, tt.given)
			var events []Event
			for i, body := range tt.bodies {
				cmd, err := DecodeCommand(CmdPaymentCallback, []byte(body))
				if err != nil {
					t.Fatal(err)
				}
				events, err = o.Decide(cmd, CommandMeta{CommandID: "cb-" + string(rune('a'+i))}, t0)
				if err != nil {
					t.Fatalf("callback %d: %v", i, err)
				}
				for _, e := range events {
					if err := o.Apply(e); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got := eventTypes(events); !reflect.DeepEqual(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("got events %v, want %v", got, tt.want)
			}
		})
	}
}
