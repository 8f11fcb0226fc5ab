package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Decide turns a command into the events it causes, without changing the
// order; the caller appends the events and folds them with Apply.
//
// Results:
//   - events and a nil error: append them;
//   - no events and a nil error: the command was already done (a duplicate
//     payment callback, a failure reported after success); nothing changes;
//   - an *Error and no events: the command is refused;
//   - an *Error with CodeAmountMismatch AND events: a payment that does not
//     match the total was received. The events record it and refund it, so
//     no money is lost, and must be appended; the error tells the sender.
//
// The lifecycle FSM is the gate: no decide step runs for a command the FSM
// does not allow in the current state.
func (o *Order) Decide(cmd Command, meta CommandMeta, now time.Time) ([]Event, error) {
	if cmd == nil {
		return nil, invalid("", "no command")
	}
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	if meta.CommandID == "" {
		return nil, invalid("command_id", "is required: it makes retries safe")
	}
	if o.id != "" && cmd.OrderID() != o.id {
		return nil, invalid("order_id", "the command is for order %s, not %s", cmd.OrderID(), o.id)
	}
	typ := cmd.CommandType()
	if !o.Exists() && typ != CmdPlaceOrder {
		return nil, &Error{Code: CodeNotFound, Message: fmt.Sprintf("order %s does not exist", cmd.OrderID())}
	}
	if o.alreadyDone(cmd) {
		return nil, nil
	}
	if !allowed(o.state, typ) {
		return nil, o.illegal(typ)
	}
	d := &decision{meta: meta, now: now.UTC()}
	var err error
	switch c := cmd.(type) {
	case PlaceOrder:
		o.decidePlace(c, d)
	case MarkStockReserved:
		d.add(StockReserved{})
	case MarkStockRejected:
		d.add(StockRejected{Reason: c.Reason, SKUs: c.SKUs})
	case ConfirmPayment:
		err = o.decidePayment(c, d)
	case FailPayment:
		d.add(PaymentFailed{PaymentID: c.PaymentID, Reason: c.Reason, Provider: c.Provider})
	case CancelOrder:
		o.decideCancel(c, d)
	case ExpirePayment:
		d.add(OrderCancelled{Reason: "payment timeout: no payment by " + c.Deadline.UTC().Format(time.RFC3339)})
	case ShipOrder:
		d.add(OrderShipped{Carrier: c.Carrier, TrackingNumber: c.TrackingNumber})
	case ConfirmDelivery:
		d.add(OrderDelivered{})
	case CompleteOrder:
		d.add(OrderCompleted{})
	case RequestRefund:
		err = o.decideRefund(c, d)
	case CompleteRefund:
		err = o.decideCompleteRefund(c, d)
	case RejectRefund:
		err = o.decideRejectRefund(c, d)
	default:
		return nil, &Error{Code: CodeUnknownCommand, Message: fmt.Sprintf("command %T is not an order command", cmd)}
	}
	return d.events, err
}

// decision collects the events of one command, stamped alike.
type decision struct {
	meta   CommandMeta
	now    time.Time
	events []Event
}

func (d *decision) add(data EventData) {
	d.events = append(d.events, Event{
		Type:    data.EventType(),
		Version: defaultCodec.schemas[data.EventType()].version,
		Data:    data,
		Meta: EventMeta{CommandID: d.meta.CommandID, CorrelationID: d.meta.CorrelationID,
			CausationID: d.meta.CausationID, CommandFingerprint: d.meta.Fingerprint, OccurredAt: d.now, TraceParent: d.meta.TraceParent},
	})
}

// autoRefundID names the refund a command opens by itself; derived from the
// command ID so a re-decided command opens the same refund.
func (d *decision) autoRefundID() string {
	sum := sha256.Sum256([]byte(d.meta.CommandID))
	return "auto-" + hex.EncodeToString(sum[:10])
}

func (o *Order) illegal(command string) *Error {
	return &Error{Code: CodeIllegalTransition, State: o.state, Command: command,
		Message: fmt.Sprintf("%s is not allowed while the order is %s", command, stateName(o.state))}
}

// alreadyDone recognises payment callbacks that change nothing: the same
// payment reported again, or a failure reported after the payment was
// recorded. Providers resend and reorder callbacks; only the first counts.
func (o *Order) alreadyDone(cmd Command) bool {
	switch c := cmd.(type) {
	case ConfirmPayment:
		st := o.payments[c.PaymentID]
		return st == paymentSucceeded || st == paymentMismatched
	case FailPayment:
		return o.payments[c.PaymentID] != 0
	}
	return false
}

func (o *Order) decidePlace(c PlaceOrder, d *decision) {
	var total int64
	for _, l := range c.Lines {
		total, _ = mulAdd(total, l.Quantity, l.UnitPrice) // Validate ruled out overflow
	}
	lines := make([]Line, len(c.Lines))
	copy(lines, c.Lines)
	d.add(OrderPlaced{OrderID: c.Order, CustomerID: c.CustomerID, Lines: lines, Total: Money{total, c.Currency}})
}

func (o *Order) decidePayment(c ConfirmPayment, d *decision) error {
	cur := c.Currency
	if cur == "" {
		cur = o.total.Currency
	}
	amount := Money{c.Amount, cur}
	if cur != o.total.Currency {
		return &Error{Code: CodeAmountMismatch, Message: fmt.Sprintf(
			"payment %s is in %s but the order is in %s; it was not recorded: refund it with the provider", c.PaymentID, cur, o.total.Currency)}
	}
	switch o.state {
	case StateAwaitingPayment:
		if amount != o.total {
			d.add(PaymentAmountMismatched{PaymentID: c.PaymentID, Amount: amount, Expected: o.total, Provider: c.Provider})
			d.add(RefundRequested{RefundID: d.autoRefundID(), Amount: amount, Automatic: true,
				Reason: fmt.Sprintf("payment %s of %s does not match the order total %s", c.PaymentID, amount, o.total)})
			return &Error{Code: CodeAmountMismatch, Message: fmt.Sprintf(
				"payment %s of %s does not match the order total %s: it was recorded and a refund opened; the order still awaits payment", c.PaymentID, amount, o.total)}
		}
		d.add(PaymentSucceeded{PaymentID: c.PaymentID, Amount: amount, Provider: c.Provider})
	case StateCancelled:
		d.add(PaymentSucceeded{PaymentID: c.PaymentID, Amount: amount, Provider: c.Provider, Late: true})
		d.add(RefundRequested{RefundID: d.autoRefundID(), Amount: amount, Automatic: true,
			Reason: "payment received after the order was cancelled"})
	default:
		d.add(PaymentSucceeded{PaymentID: c.PaymentID, Amount: amount, Provider: c.Provider, Extra: true})
		d.add(RefundRequested{RefundID: d.autoRefundID(), Amount: amount, Automatic: true,
			Reason: fmt.Sprintf("second payment for an order already paid by %s", o.payment.ID)})
	}
	return nil
}

func (o *Order) decideCancel(c CancelOrder, d *decision) {
	d.add(OrderCancelled{Reason: c.Reason})
	if left := o.outstanding(); o.state == StatePaid && left > 0 {
		d.add(RefundRequested{RefundID: d.autoRefundID(), Amount: Money{left, o.total.Currency}, Automatic: true,
			Reason: "order cancelled after payment: " + c.Reason})
	}
}

func (o *Order) decideRefund(c RequestRefund, d *decision) error {
	if c.Currency != "" && c.Currency != o.total.Currency {
		return invalid("currency", "must be the order currency %s, got %s", o.total.Currency, c.Currency)
	}
	if _, used := o.refundIdx[c.RefundID]; used {
		return invalid("refund_id", "refund %s already exists; choose a new refund ID", c.RefundID)
	}
	if left := o.outstanding(); c.Amount > left {
		return &Error{Code: CodeRefundExceedsPaid, Message: fmt.Sprintf(
			"a refund of %d %s exceeds the %d %s still refundable (received %d, refunded %d, pending %d)",
			c.Amount, o.total.Currency, left, o.total.Currency, o.received, o.refunded, o.pending)}
	}
	d.add(RefundRequested{RefundID: c.RefundID, Amount: Money{c.Amount, o.total.Currency}, Reason: c.Reason})
	return nil
}

// settleable finds a refund that a CompleteRefund or RejectRefund may settle.
func (o *Order) settleable(refundID, command string) (*refund, error) {
	i, ok := o.refundIdx[refundID]
	if !ok {
		return nil, &Error{Code: CodeNotFound, Message: fmt.Sprintf("order %s has no refund %s", o.id, refundID)}
	}
	r := o.refunds[i]
	if !refundAllows(r.Status, command) {
		return nil, &Error{Code: CodeIllegalTransition, State: o.state, Command: command,
			Message: fmt.Sprintf("%s is not allowed: refund %s is already %s", command, refundID, r.Status)}
	}
	return r, nil
}

func (o *Order) decideCompleteRefund(c CompleteRefund, d *decision) error {
	r, err := o.settleable(c.RefundID, CmdCompleteRefund)
	if err != nil {
		return err
	}
	d.add(RefundCompleted{RefundID: r.ID, Amount: r.Amount})
	refunded, pending := o.refunded+r.Amount.Amount, o.pending-r.Amount.Amount
	if refunded == o.received && pending == 0 && allowed(o.state, autoRefunded) {
		d.add(OrderRefunded{Amount: Money{o.received, o.total.Currency}})
	}
	return nil
}

func (o *Order) decideRejectRefund(c RejectRefund, d *decision) error {
	r, err := o.settleable(c.RefundID, CmdRejectRefund)
	if err != nil {
		return err
	}
	d.add(RefundRejected{RefundID: r.ID, Reason: c.Reason})
	return nil
}
