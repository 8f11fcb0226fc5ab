package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Command is a request to change an order. Every command type is a struct
// with snake_case JSON tags, decoded from the wire by DecodeCommand.
type Command interface {
	// CommandType is the stable wire name, e.g. "PlaceOrder".
	CommandType() string
	// OrderID is the order the command addresses.
	OrderID() string
	// Validate checks the command on its own, without the order; it returns
	// an *Error with CodeInvalidCommand naming the offending field.
	Validate() error
}

// CommandMeta says who sent a command; it is copied into every event the
// command produces. CommandID is the idempotency key.
type CommandMeta struct {
	CommandID     string
	CorrelationID string
	CausationID   string
	Fingerprint   string // see EventMeta.CommandFingerprint; empty when not known
	TraceParent   string // see EventMeta.TraceParent; empty when not traced
}

// PlaceOrder creates an order. The caller chooses the order ID (a UUID), so a
// retried PlaceOrder addresses the same order.
type PlaceOrder struct {
	Order      string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Lines      []Line `json:"lines"`
	Currency   string `json:"currency"`
}

// MarkStockReserved records that the stock saga reserved every line.
type MarkStockReserved struct {
	Order string `json:"order_id"`
}

// MarkStockRejected records that stock could not be reserved.
type MarkStockRejected struct {
	Order  string   `json:"order_id"`
	Reason string   `json:"reason"`
	SKUs   []string `json:"skus,omitempty"`
}

// ConfirmPayment records money received from a payment provider. Currency
// may be omitted, meaning the order's currency.
type ConfirmPayment struct {
	Order     string `json:"order_id"`
	PaymentID string `json:"payment_id"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency,omitempty"`
	Provider  string `json:"provider,omitempty"`
}

// FailPayment records a failed payment attempt.
type FailPayment struct {
	Order     string `json:"order_id"`
	PaymentID string `json:"payment_id"`
	Reason    string `json:"reason,omitempty"`
	Provider  string `json:"provider,omitempty"`
}

// CancelOrder cancels an order that has not shipped.
type CancelOrder struct {
	Order  string `json:"order_id"`
	Reason string `json:"reason"`
}

// ShipOrder records the shipment of a paid order.
type ShipOrder struct {
	Order          string `json:"order_id"`
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

// ConfirmDelivery records delivery of a shipped order.
type ConfirmDelivery struct {
	Order string `json:"order_id"`
}

// CompleteOrder closes a delivered order.
type CompleteOrder struct {
	Order string `json:"order_id"`
}

// RequestRefund opens a refund of part or all of the money received. The
// caller chooses the refund ID. Currency may be omitted (order currency).
type RequestRefund struct {
	Order    string `json:"order_id"`
	RefundID string `json:"refund_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency,omitempty"`
	Reason   string `json:"reason"`
}

// CompleteRefund records that a requested refund was paid out.
type CompleteRefund struct {
	Order    string `json:"order_id"`
	RefundID string `json:"refund_id"`
}

// RejectRefund records that a requested refund will not be paid.
type RejectRefund struct {
	Order    string `json:"order_id"`
	RefundID string `json:"refund_id"`
	Reason   string `json:"reason"`
}

// CommandType implementations.
func (PlaceOrder) CommandType() string        { return CmdPlaceOrder }
func (MarkStockReserved) CommandType() string { return CmdMarkStockReserved }
func (MarkStockRejected) CommandType() string { return CmdMarkStockRejected }
func (ConfirmPayment) CommandType() string    { return CmdConfirmPayment }
func (FailPayment) CommandType() string       { return CmdFailPayment }
func (CancelOrder) CommandType() string       { return CmdCancelOrder }
func (ShipOrder) CommandType() string         { return CmdShipOrder }
func (ConfirmDelivery) CommandType() string   { return CmdConfirmDelivery }
func (CompleteOrder) CommandType() string     { return CmdCompleteOrder }
func (RequestRefund) CommandType() string     { return CmdRequestRefund }
func (CompleteRefund) CommandType() string    { return CmdCompleteRefund }
func (RejectRefund) CommandType() string      { return CmdRejectRefund }

// OrderID implementations.
func (c PlaceOrder) OrderID() string        { return c.Order }
func (c MarkStockReserved) OrderID() string { return c.Order }
func (c MarkStockRejected) OrderID() string { return c.Order }
func (c ConfirmPayment) OrderID() string    { return c.Order }
func (c FailPayment) OrderID() string       { return c.Order }
func (c CancelOrder) OrderID() string       { return c.Order }
func (c ShipOrder) OrderID() string         { return c.Order }
func (c ConfirmDelivery) OrderID() string   { return c.Order }
func (c CompleteOrder) OrderID() string     { return c.Order }
func (c RequestRefund) OrderID() string     { return c.Order }
func (c CompleteRefund) OrderID() string    { return c.Order }
func (c RejectRefund) OrderID() string      { return c.Order }

// Limits on command fields; generous for real use, tight enough that one
// command cannot bloat an order's stream.
const (
	maxLines     = 500
	maxTextLen   = 500
	maxIDLen     = 128
	maxQuantity  = 1_000_000
	uuidTextSize = 36
)

// Validate implementations.

func (c PlaceOrder) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if err := checkID("customer_id", c.CustomerID); err != nil {
		return err
	}
	if !validCurrency(c.Currency) {
		return invalid("currency", "must be an ISO 4217 code such as EUR, got %q", c.Currency)
	}
	if len(c.Lines) == 0 {
		return invalid("lines", "an order needs at least one line")
	}
	if len(c.Lines) > maxLines {
		return invalid("lines", "at most %d lines, got %d", maxLines, len(c.Lines))
	}
	var total int64
	for i, l := range c.Lines {
		// The field name is built only for an error: replays validate every
		// stored OrderPlaced, and formatting it each time cost allocations.
		f := func(sub string) string { return fmt.Sprintf("lines[%d]%s", i, sub) }
		if err := checkID("sku", l.SKU); err != nil {
			if de, ok := err.(*Error); ok {
				de.Field = f(".sku")
			}
			return err
		}
		if l.Quantity <= 0 || l.Quantity > maxQuantity {
			return invalid(f(".quantity"), "must be between 1 and %d, got %d", maxQuantity, l.Quantity)
		}
		if l.UnitPrice < 0 {
			return invalid(f(".unit_price"), "must not be negative, got %d", l.UnitPrice)
		}
		var ok bool
		if total, ok = mulAdd(total, l.Quantity, l.UnitPrice); !ok {
			return invalid(f(""), "the order total overflows")
		}
	}
	return nil
}

func (c MarkStockReserved) Validate() error { return checkOrderID(c.Order) }

func (c MarkStockRejected) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	return checkText("reason", c.Reason, true)
}

// checkAmount checks a payment's or refund's amount, a positive number of
// minor units, and its currency, which may be omitted (the order currency).
func checkAmount(amount int64, currency string) error {
	if amount <= 0 {
		return invalid("amount", "must be a positive number of minor units, got %d", amount)
	}
	if currency != "" && !validCurrency(currency) {
		return invalid("currency", "must be an ISO 4217 code such as EUR, got %q", currency)
	}
	return nil
}

func (c ConfirmPayment) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if err := checkID("payment_id", c.PaymentID); err != nil {
		return err
	}
	if err := checkAmount(c.Amount, c.Currency); err != nil {
		return err
	}
	return checkText("provider", c.Provider, false)
}

func (c FailPayment) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if err := checkID("payment_id", c.PaymentID); err != nil {
		return err
	}
	if err := checkText("reason", c.Reason, false); err != nil {
		return err
	}
	return checkText("provider", c.Provider, false)
}

func (c CancelOrder) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	return checkText("reason", c.Reason, true)
}

func (c ShipOrder) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if err := checkText("carrier", c.Carrier, true); err != nil {
		return err
	}
	return checkText("tracking_number", c.TrackingNumber, true)
}

func (c ConfirmDelivery) Validate() error { return checkOrderID(c.Order) }

func (c CompleteOrder) Validate() error { return checkOrderID(c.Order) }

func (c RequestRefund) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if err := checkID("refund_id", c.RefundID); err != nil {
		return err
	}
	if err := checkAmount(c.Amount, c.Currency); err != nil {
		return err
	}
	return checkText("reason", c.Reason, true)
}

func (c CompleteRefund) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	return checkID("refund_id", c.RefundID)
}

func (c RejectRefund) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if err := checkID("refund_id", c.RefundID); err != nil {
		return err
	}
	return checkText("reason", c.Reason, true)
}

// checkID accepts identifiers chosen by other systems: 1 to 128 characters
// from letters, digits and - _ . : so they are safe in keys and subjects.
func checkID(field, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	if len(id) > maxIDLen {
		return invalid(field, "must be at most %d characters, got %d", maxIDLen, len(id))
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return invalid(field, "may contain only letters, digits and - _ . :, got %q", truncate(id))
		}
	}
	return nil
}

func checkText(field, s string, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid(field, "is required")
	}
	if len(s) > maxTextLen {
		return invalid(field, "must be at most %d bytes, got %d", maxTextLen, len(s))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// commandDecoders is the explicit map from wire name to decoder.
var commandDecoders = map[string]func([]byte) (Command, error){
	CmdPlaceOrder:        decodeCommand[PlaceOrder],
	CmdMarkStockReserved: decodeCommand[MarkStockReserved],
	CmdMarkStockRejected: decodeCommand[MarkStockRejected],
	CmdConfirmPayment:    decodeCommand[ConfirmPayment],
	CmdFailPayment:       decodeCommand[FailPayment],
	CmdCancelOrder:       decodeCommand[CancelOrder],
	CmdShipOrder:         decodeCommand[ShipOrder],
	CmdConfirmDelivery:   decodeCommand[ConfirmDelivery],
	CmdCompleteOrder:     decodeCommand[CompleteOrder],
	CmdRequestRefund:     decodeCommand[RequestRefund],
	CmdCompleteRefund:    decodeCommand[CompleteRefund],
	CmdRejectRefund:      decodeCommand[RejectRefund],
	CmdExpirePayment:     decodeCommand[ExpirePayment],
}

// CommandTypes lists the command wire names, sorted.
func CommandTypes() []string {
	out := make([]string, 0, len(commandDecoders))
	for k := range commandDecoders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DecodeCommand decodes a command from its wire name and JSON body and
// validates it. An order ID that is a UUID in upper or mixed case is put
// in its canonical lower-case form (see NormalizeOrderID). Unknown names
// give CodeUnknownCommand; malformed JSON, unknown fields, wrong types and
// invalid values give CodeInvalidCommand naming the field.
func DecodeCommand(commandType string, body []byte) (Command, error) {
	dec, ok := commandDecoders[commandType]
	if !ok {
		dec, ok = transportDecoders[commandType] // PaymentCallback, see callback.go
	}
	if !ok {
		return nil, &Error{Code: CodeUnknownCommand, Message: fmt.Sprintf(
			"unknown command type %q; known types: %s", truncate(commandType), strings.Join(CommandTypes(), ", "))}
	}
	cmd, err := dec(body)
	if err != nil {
		return nil, err
	}
	cmd = canonicalCommand(cmd)
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	return cmd, nil
}

func decodeCommand[T Command](body []byte) (Command, error) {
	var c T
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, jsonError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, invalid("", "the body must be one JSON object with nothing after it")
	}
	return c, nil
}

// jsonError names the field a JSON decoding error is about.
func jsonError(err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalid(te.Field, "must be a JSON %s, got %s", te.Type.Kind(), te.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		field := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		return invalid(field, "is not a field of this command")
	}
	return invalid("", "malformed JSON: %v", err)
}
