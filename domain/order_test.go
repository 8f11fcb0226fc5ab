package domain

import (
	"errors"
	"slices"
	"testing"
)

// TestDecide covers the rules beyond the lifecycle table: money invariants,
// automatic refunds, duplicate and reordered payment callbacks, validation.
func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		given      []Event
		when       Command
		wantEvents []string
		wantErr    *Error // nil: no error
		wantState  State
	}{
		{
			name:       "underpayment is recorded and refunded, order still awaits payment",
			given:      []Event{placed(), ev(StockReserved{})},
			when:       ConfirmPayment{Order: testOrder, PaymentID: "p-1", Amount: 900},
			wantEvents: []string{EvtPaymentAmountMismatched, EvtRefundRequested},
			wantErr:    ErrAmountMismatch,
			wantState:  StateAwaitingPayment,
		},
		{
			name:      "payment in another currency is refused",
			given:     []Event{placed(), ev(StockReserved{})},
			when:      ConfirmPayment{Order: testOrder, PaymentID: "p-1", Amount: 1000, Currency: "USD"},
			wantErr:   ErrAmountMismatch,
			wantState: StateAwaitingPayment,
		},
		{
			name:       "late payment on a cancelled order is recorded and refunded",
			given:      []Event{placed(), ev(StockReserved{}), ev(OrderCancelled{Reason: "timeout"})},
			when:       ConfirmPayment{Order: testOrder, PaymentID: "p-1", Amount: 1000},
			wantEvents: []string{EvtPaymentSucceeded, EvtRefundRequested},
			wantState:  StateCancelled,
		},
		{
			name:      "the same payment reported twice changes nothing",
			given:     paid(),
			when:      ConfirmPayment{Order: testOrder, PaymentID: "p-1", Amount: 1000},
			wantState: StatePaid,
		},
		{
			name:      "a failure reported after the payment succeeded changes nothing",
			given:     paid(),
			when:      FailPayment{Order: testOrder, PaymentID: "p-1", Reason: "timeout at provider"},
			wantState: StatePaid,
		},
		{
			name:       "success after a failure of the same payment counts",
			given:      []Event{placed(), ev(StockReserved{}), ev(PaymentFailed{PaymentID: "p-1", Reason: "3ds"})},
			when:       ConfirmPayment{Order: testOrder, PaymentID: "p-1", Amount: 1000},
			wantEvents: []string{EvtPaymentSucceeded},
			wantState:  StatePaid,
		},
		{
			name:       "cancel after payment opens a refund of everything received",
			given:      paid(),
			when:       CancelOrder{Order: testOrder, Reason: "changed mind"},
			wantEvents: []string{EvtOrderCancelled, EvtRefundRequested},
			wantState:  StateCancelled,
		},
		{
			name:      "refund beyond the money received is refused",
			given:     paid(),
			when:      RequestRefund{Order: testOrder, RefundID: "r-1", Amount: 1001, Reason: "x"},
			wantErr:   ErrRefundExceedsPaid,
			wantState: StatePaid,
		},
		{
			name:      "pending refunds count against what is refundable",
			given:     append(paid(), ev(RefundRequested{RefundID: "r-1", Amount: eur(600), Reason: "x"})),
			when:      RequestRefund{Order: testOrder, RefundID: "r-2", Amount: 401, Reason: "y"},
			wantErr:   ErrRefundExceedsPaid,
			wantState: StatePaid,
		},
		{
			name:      "a refund ID is used once",
			given:     append(paid(), ev(RefundRequested{RefundID: "r-1", Amount: eur(100), Reason: "x"})),
			when:      RequestRefund{Order: testOrder, RefundID: "r-1", Amount: 100, Reason: "x"},
			wantErr:   ErrInvalidCommand,
			wantState: StatePaid,
		},
		{
			name:       "the last refund completing the full amount moves the order to refunded",
			given:      append(paid(), ev(RefundRequested{RefundID: "r-1", Amount: eur(1000), Reason: "x"})),
			when:       CompleteRefund{Order: testOrder, RefundID: "r-1"},
			wantEvents: []string{EvtRefundCompleted, EvtOrderRefunded},
			wantState:  StateRefunded,
		},
		{
			name: "partial refunds reach refunded only when the sum is complete",
			given: append(paid(),
				ev(RefundRequested{RefundID: "r-1", Amount: eur(400), Reason: "x"}),
				ev(RefundCompleted{RefundID: "r-1", Amount: eur(400)}),
				ev(RefundRequested{RefundID: "r-2", Amount: eur(600), Reason: "y"})),
			when:       CompleteRefund{Order: testOrder, RefundID: "r-2"},
			wantEvents: []string{EvtRefundCompleted, EvtOrderRefunded},
			wantState:  StateRefunded,
		},
		{
			name:       "a cancelled order stays cancelled when its refund completes",
			given:      append(paid(), ev(OrderCancelled{Reason: "x"}), ev(RefundRequested{RefundID: "a", Amount: eur(1000), Automatic: true})),
			when:       CompleteRefund{Order: testOrder, RefundID: "a"},
			wantEvents: []string{EvtRefundCompleted},
			wantState:  StateCancelled,
		},
		{
			name:      "an unknown refund is not found",
			given:     paid(),
			when:      CompleteRefund{Order: testOrder, RefundID: "nope"},
			wantErr:   ErrNotFound,
			wantState: StatePaid,
		},
		{
			name: "a settled refund cannot be settled again",
			given: append(paid(), ev(RefundRequested{RefundID: "r-1", Amount: eur(100), Reason: "x"}),
				ev(RefundRejected{RefundID: "r-1", Reason: "no"})),
			when:      CompleteRefund{Order: testOrder, RefundID: "r-1"},
			wantErr:   ErrIllegalTransition,
			wantState: StatePaid,
		},
		{
			name:      "commands on a missing order are not found",
			when:      ShipOrder{Order: testOrder, Carrier: "dhl", TrackingNumber: "1"},
			wantErr:   ErrNotFound,
			wantState: StateNone,
		},
		{
			name:      "placing an existing order is an illegal transition",
			given:     []Event{placed()},
			when:      sampleCommand(CmdPlaceOrder),
			wantErr:   ErrIllegalTransition,
			wantState: StatePlaced,
		},
		{
			name:      "a completed order accepts no shipment",
			given:     givenState(StateCompleted),
			when:      ShipOrder{Order: testOrder, Carrier: "dhl", TrackingNumber: "1"},
			wantErr:   ErrIllegalTransition,
			wantState: StateCompleted,
		},
		{
			name:      "a command for another order is invalid",
			given:     []Event{placed()},
			when:      CancelOrder{Order: "11111111-2222-4333-8444-555555555555", Reason: "x"},
			wantErr:   ErrInvalidCommand,
			wantState: StatePlaced,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fold(t, tt.given)
			events, err := o.Decide(tt.when, CommandMeta{CommandID: "cmd-x"}, t0)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want code %s", err, tt.wantErr.Code)
			}
			if got := eventTypes(events); !slices.Equal(got, tt.wantEvents) && !(len(got) == 0 && len(tt.wantEvents) == 0) {
				t.Fatalf("got events %v, want %v", got, tt.wantEvents)
			}
			for _, e := range events {
				if err := o.Apply(e); err != nil {
					t.Fatalf("decided %s does not fold: %v", e.Type, err)
				}
			}
			if o.State() != tt.wantState {
				t.Fatalf("state = %q, want %q", o.State(), tt.wantState)
			}
			checkMoney(t, o)
		})
	}
}

// checkMoney asserts the money invariants of an order.
func checkMoney(tb testing.TB, o *Order) {
	tb.Helper()
	if o.received < 0 || o.refunded < 0 || o.pending < 0 {
		tb.Fatalf("negative money: received %d refunded %d pending %d", o.received, o.refunded, o.pending)
	}
	if o.refunded+o.pending > o.received {
		tb.Fatalf("refunds %d + pending %d exceed received %d", o.refunded, o.pending, o.received)
	}
}

func TestValidation(t *testing.T) {
	good := sampleCommand(CmdPlaceOrder).(PlaceOrder)
	tests := []struct {
		name  string
		cmd   Command
		field string
	}{
		{"bad order id", PlaceOrder{Order: "42", CustomerID: "c", Currency: "EUR", Lines: good.Lines}, "order_id"},
		{"no customer", PlaceOrder{Order: testOrder, Currency: "EUR", Lines: good.Lines}, "customer_id"},
		{"bad currency", PlaceOrder{Order: testOrder, CustomerID: "c", Currency: "eur", Lines: good.Lines}, "currency"},
		{"no lines", PlaceOrder{Order: testOrder, CustomerID: "c", Currency: "EUR"}, "lines"},
		{"zero quantity", PlaceOrder{Order: testOrder, CustomerID: "c", Currency: "EUR", Lines: []Line{{SKU: "a", Quantity: 0}}}, "lines[0].quantity"},
		{"negative price", PlaceOrder{Order: testOrder, CustomerID: "c", Currency: "EUR", Lines: []Line{{SKU: "a", Quantity: 1, UnitPrice: -1}}}, "lines[0].unit_price"},
		{"overflowing total", PlaceOrder{Order: testOrder, CustomerID: "c", Currency: "EUR", Lines: []Line{{SKU: "a", Quantity: 1000, UnitPrice: 1 << 62}}}, "lines[0]"},
		{"sku with spaces", PlaceOrder{Order: testOrder, CustomerID: "c", Currency: "EUR", Lines: []Line{{SKU: "a b", Quantity: 1}}}, "lines[0].sku"},
		{"zero payment", ConfirmPayment{Order: testOrder, PaymentID: "p", Amount: 0}, "amount"},
		{"no payment id", ConfirmPayment{Order: testOrder, Amount: 1}, "payment_id"},
		{"no carrier", ShipOrder{Order: testOrder, TrackingNumber: "t"}, "carrier"},
		{"negative refund", RequestRefund{Order: testOrder, RefundID: "r", Amount: -5, Reason: "x"}, "amount"},
		{"no cancel reason", CancelOrder{Order: testOrder}, "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cmd.Validate()
			var de *Error
			if !errors.As(err, &de) || de.Code != CodeInvalidCommand || de.Field != tt.field {
				t.Fatalf("got %v, want invalid_command on field %q", err, tt.field)
			}
		})
	}
}

func TestDecodeCommand(t *testing.T) {
	tests := []struct {
		name, typ, body string
		code            Code
		field           string
	}{
		{"unknown type", "LaunchRocket", `{}`, CodeUnknownCommand, ""},
		{"malformed json", CmdCancelOrder, `{"order_id":`, CodeInvalidCommand, ""},
		{"wrong type", CmdConfirmPayment, `{"order_id":"` + testOrder + `","payment_id":"p","amount":"ten"}`, CodeInvalidCommand, "amount"},
		{"unknown field", CmdCancelOrder, `{"order_id":"` + testOrder + `","reason":"x","reasn":"y"}`, CodeInvalidCommand, "reasn"},
		{"trailing data", CmdCancelOrder, `{"order_id":"` + testOrder + `","reason":"x"} {}`, CodeInvalidCommand, ""},
		{"invalid value", CmdCancelOrder, `{"order_id":"` + testOrder + `"}`, CodeInvalidCommand, "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCommand(tt.typ, []byte(tt.body))
			var de *Error
			if !errors.As(err, &de) || de.Code != tt.code || de.Field != tt.field {
				t.Fatalf("got %v, want %s on field %q", err, tt.code, tt.field)
			}
		})
	}
	cmd, err := DecodeCommand(CmdShipOrder, []byte(`{"order_id":"`+testOrder+`","carrier":"dhl","tracking_number":"T1"}`))
	if err != nil || cmd.(ShipOrder).TrackingNumber != "T1" {
		t.Fatalf("valid ShipOrder: got %#v, %v", cmd, err)
	}
}

func TestErrorTable(t *testing.T) {
	for _, c := range Codes() {
		if HTTPStatus(c) < 400 || NATSStatus(c) < 400 {
			t.Errorf("code %s maps to HTTP %d / NATS %d, want an error status", c, HTTPStatus(c), NATSStatus(c))
		}
	}
	if HTTPStatus(CodeNotFound) != 404 || HTTPStatus(CodeInvalidCommand) != 400 || HTTPStatus(CodeIllegalTransition) != 409 {
		t.Fatal("not_found, invalid_command and illegal_transition must map to 404, 400 and 409")
	}
	if CodeOf(errors.New("disk on fire")) != CodeInternal {
		t.Fatal("a non-domain error must have code internal")
	}
}

func TestCommandOutcomeAfterReplay(t *testing.T) {
	o := NewOrder(testOrder)
	run := func(id string, cmd Command) {
		t.Helper()
		events, err := o.Decide(cmd, CommandMeta{CommandID: id}, t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if err := o.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	run("c1", sampleCommand(CmdPlaceOrder))
	run("c2", MarkStockReserved{Order: testOrder})
	run("c3", ConfirmPayment{Order: testOrder, PaymentID: "p", Amount: 1000})
	run("c4", CancelOrder{Order: testOrder, Reason: "x"}) // two events
	if first, last, ok := o.CommandOutcome("c4"); !ok || first != 3 || last != 4 {
		t.Fatalf("CommandOutcome(c4) = %d..%d %t, want 3..4", first, last, ok)
	}
	if _, _, ok := o.CommandOutcome("never"); ok {
		t.Fatal("an unknown command ID must not have an outcome")
	}
}
