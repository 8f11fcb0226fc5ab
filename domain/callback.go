package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// CmdPaymentCallback is the wire name of a payment provider's callback. It
// is accepted wherever commands are (the NATS command subjects, and POST
// /v1/payments/callback through them) but is not a command of its own:
// DecodeCommand turns it into ConfirmPayment or FailPayment, so the
// lifecycle table, the FSM gate and the payment rules stay in one place.
// Resent and reordered callbacks are made harmless by the order itself
// (see Order.alreadyDone): only the first report of a payment ID counts.
const CmdPaymentCallback = "PaymentCallback"

// The statuses a payment callback reports.
const (
	PaymentStatusSucceeded = "succeeded"
	PaymentStatusFailed    = "failed"
)

// PaymentCallback is a payment provider's notification about one payment,
// in the JSON shape providers send. Amount is in minor units. Reason is
// recorded only for failures.
type PaymentCallback struct {
	Order     string `json:"order_id"`
	PaymentID string `json:"payment_id"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Status    string `json:"status"`
	Provider  string `json:"provider,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Validate checks the callback on its own; it returns an *Error with
// CodeInvalidCommand naming the offending field.
func (c PaymentCallback) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if err := checkID("payment_id", c.PaymentID); err != nil {
		return err
	}
	if c.Status != PaymentStatusSucceeded && c.Status != PaymentStatusFailed {
		return invalid("status", "must be %q or %q, got %q", PaymentStatusSucceeded, PaymentStatusFailed, truncate(c.Status))
	}
	if c.Amount <= 0 {
		return invalid("amount", "must be a positive number of minor units, got %d", c.Amount)
	}
	if !validCurrency(c.Currency) {
		return invalid("currency", "must be an ISO 4217 code such as EUR, got %q", truncate(c.Currency))
	}
	// The provider is part of the idempotency key: keep it to the ID
	// alphabet so the key cannot be ambiguous.
	if c.Provider != "" {
		if err := checkID("provider", c.Provider); err != nil {
			return err
		}
	}
	return checkText("reason", c.Reason, false)
}

// Command is the order command the callback stands for: ConfirmPayment for
// a success, FailPayment for a failure.
func (c PaymentCallback) Command() Command {
	if c.Status == PaymentStatusSucceeded {
		return ConfirmPayment{Order: c.Order, PaymentID: c.PaymentID, Amount: c.Amount, Currency: c.Currency, Provider: c.Provider}
	}
	return FailPayment{Order: c.Order, PaymentID: c.PaymentID, Reason: c.Reason, Provider: c.Provider}
}

// IdempotencyKey is what makes two callbacks the same report of a
// payment: "<order_id>\n<provider>\n<payment_id>\n<status>". The
// transport derives the callback's command ID from it (see
// nats.CallbackCommandID), so a resent callback is recognised by the
// command stream's dedupe and by the order's record of command IDs, and
// answered with its first outcome. The status is part of the key because a
// failure and a success of one payment are different reports (the order
// decides what the second one means); the order ID is, because command IDs
// are global: an ID shared by two orders would answer one with the other's
// outcome. Amount and reason are not: they are details of one report.
func (c PaymentCallback) IdempotencyKey() string {
	return c.Order + "\n" + c.Provider + "\n" + c.PaymentID + "\n" + c.Status
}

// DecodePaymentCallback decodes and validates a callback body with the
// rules of DecodeCommand: one JSON object, no unknown fields, valid values,
// and the order ID in its canonical lower-case form.
func DecodePaymentCallback(body []byte) (PaymentCallback, error) {
	var c PaymentCallback
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return PaymentCallback{}, jsonError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return PaymentCallback{}, invalid("", "the body must be one JSON object with nothing after it")
	}
	c.Order, _ = NormalizeOrderID(c.Order) // before IdempotencyKey: one payment, one key, whatever the spelling
	if err := c.Validate(); err != nil {
		return PaymentCallback{}, err
	}
	return c, nil
}

// transportDecoders are wire names that decode into another command
// rather than being commands of the lifecycle; DecodeCommand consults them
// after commandDecoders.
var transportDecoders = map[string]func([]byte) (Command, error){
	CmdPaymentCallback: decodePaymentCallback,
}

func decodePaymentCallback(body []byte) (Command, error) {
	c, err := DecodePaymentCallback(body)
	if err != nil {
		return nil, err
	}
	return c.Command(), nil
}
