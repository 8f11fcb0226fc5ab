package domain

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
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

// CallbackNamespace is the UUID namespace of callback command IDs.
const CallbackNamespace = "b4074bc2-3050-46d1-ac45-5f22299f60c9"

// CommandID is the callback's idempotency key as a command ID: the
// name-based UUID (version 5, SHA-1) in CallbackNamespace of
// "<order_id>\n<provider>\n<payment_id>\n<status>". The same report of a
// payment always gets the same ID, so a resent callback is recognised by
// the command stream's dedupe and by the order's record of command IDs, and
// answered with its first outcome. The status is part of the key because a
// failure and a success of one payment are different reports (the order
// decides what the second one means); the order ID is, because command IDs
// are global: an ID shared by two orders would answer one with the other's
// outcome.
func (c PaymentCallback) CommandID() string {
	name := c.Order + "\n" + c.Provider + "\n" + c.PaymentID + "\n" + c.Status
	return uuidV5(CallbackNamespace, name)
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
	c.Order, _ = NormalizeOrderID(c.Order) // before CommandID: one payment, one key, whatever the spelling
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

// uuidV5 is RFC 9562's name-based UUID with SHA-1; namespace is a UUID in
// canonical text form. (The domain imports no UUID package.)
func uuidV5(namespace, name string) string {
	ns, err := hex.DecodeString(namespace[0:8] + namespace[9:13] + namespace[14:18] + namespace[19:23] + namespace[24:36])
	if err != nil || len(ns) != 16 {
		panic("uuidV5: bad namespace " + namespace)
	}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
