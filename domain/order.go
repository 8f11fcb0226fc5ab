package domain

import (
	"fmt"
	"time"
)

// Order is the order aggregate. Its fields change only by folding events
// (Apply); Decide reads them to turn a command into new events.
type Order struct {
	id         string
	state      State
	revision   int64 // of the last folded event; -1 before the first
	customerID string
	lines      []Line
	total      Money
	placedAt   time.Time
	updatedAt  time.Time

	payment   payment
	received  int64          // every unit of money received, matched or not
	payments  map[string]int // payment ID -> paymentSucceeded/Mismatched/Failed
	refunds   []*refund      // in request order
	refundIdx map[string]int // refund ID -> index in refunds
	refunded  int64          // sum of completed refunds
	pending   int64          // sum of requested, not yet settled refunds

	shipment     shipment
	cancelReason string

	// commands maps every command ID the order has applied to the revisions
	// of the events it produced. An order has tens of events, so the whole
	// set is kept: a redelivered command is recognised however late it comes.
	commands map[string][2]int64
}

type payment struct {
	ID       string
	Provider string
	Amount   Money
	At       time.Time
}

const (
	paymentSucceeded = iota + 1
	paymentMismatched
	paymentFailed
)

type refund struct {
	ID        string
	Amount    Money
	Reason    string
	Status    RefundStatus
	Automatic bool
	Requested time.Time
	Settled   time.Time
	Rejection string
}

type shipment struct {
	Carrier        string
	TrackingNumber string
	ShippedAt      time.Time
	DeliveredAt    time.Time
}

// NewOrder returns an order with no events: Exists is false until
// OrderPlaced is folded.
func NewOrder(id string) *Order {
	return &Order{id: id, revision: -1}
}

// ID is the order ID.
func (o *Order) ID() string { return o.id }

// Revision is the stream revision of the last folded event, -1 when none.
func (o *Order) Revision() int64 { return o.revision }

// State is the lifecycle state; StateNone before OrderPlaced.
func (o *Order) State() State { return o.state }

// Exists reports whether the order was placed.
func (o *Order) Exists() bool { return o.state != StateNone }

// Total is the order total.
func (o *Order) Total() Money { return o.total }

// Received is all money received for the order, matched or not.
func (o *Order) Received() Money { return Money{o.received, o.total.Currency} }

// Refunded is the sum of completed refunds.
func (o *Order) Refunded() Money { return Money{o.refunded, o.total.Currency} }

// CommandOutcome returns the revisions of the first and last event the
// command produced when it was applied, if it was.
func (o *Order) CommandOutcome(commandID string) (first, last int64, ok bool) {
	r, ok := o.commands[commandID]
	return r[0], r[1], ok
}

// outstanding is what can still be refunded: money received less refunds
// completed or pending.
func (o *Order) outstanding() int64 { return o.received - o.refunded - o.pending }

// Apply folds one event into the order. It refuses an event the lifecycle or
// the money invariants do not allow, so a replay also verifies history; the
// FSM state is set directly, without callbacks.
func (o *Order) Apply(e Event) error {
	if e.Data == nil || e.Data.EventType() != e.Type {
		return fmt.Errorf("apply: event type %q does not match its payload", e.Type)
	}
	if e.Type != EvtOrderPlaced && !o.Exists() {
		return fmt.Errorf("apply %s: the order was never placed", e.Type)
	}
	if err := o.fold(e); err != nil {
		return fmt.Errorf("apply %s in state %s: %w", e.Type, stateName(o.state), err)
	}
	o.revision++
	if !e.Meta.OccurredAt.IsZero() {
		o.updatedAt = e.Meta.OccurredAt
	}
	if id := e.Meta.CommandID; id != "" {
		if o.commands == nil {
			o.commands = make(map[string][2]int64)
		}
		r, seen := o.commands[id]
		if !seen {
			r[0] = o.revision
		}
		r[1] = o.revision
		o.commands[id] = r
	}
	return nil
}

func stateName(s State) string {
	if s == StateNone {
		return "(none)"
	}
	return string(s)
}

// move checks that command may run now and sets the state it leads to.
func (o *Order) move(command string) error {
	if !allowed(o.state, command) {
		return fmt.Errorf("the lifecycle does not allow %s", command)
	}
	to, _ := target(o.state, command)
	o.state = to
	return nil
}

func (o *Order) fold(e Event) error {
	at := e.Meta.OccurredAt
	switch d := e.Data.(type) {
	case OrderPlaced:
		if err := checkPlaced(o.id, d); err != nil {
			return err
		}
		if err := o.move(CmdPlaceOrder); err != nil {
			return err
		}
		o.id, o.customerID, o.lines, o.total, o.placedAt = d.OrderID, d.CustomerID, d.Lines, d.Total, at
	case StockReserved:
		return o.move(CmdMarkStockReserved)
	case StockRejected:
		o.cancelReason = d.Reason
		return o.move(CmdMarkStockRejected)
	case PaymentSucceeded:
		return o.foldPayment(d, at)
	case PaymentAmountMismatched:
		if o.state != StateAwaitingPayment {
			return fmt.Errorf("a mismatched payment is only recorded while awaiting payment")
		}
		o.notePayment(d.PaymentID, paymentMismatched)
		o.received += d.Amount.Amount
	case PaymentFailed:
		if err := o.move(CmdFailPayment); err != nil {
			return err
		}
		o.notePayment(d.PaymentID, paymentFailed)
	case OrderCancelled:
		o.cancelReason = d.Reason
		return o.move(CmdCancelOrder)
	case OrderShipped:
		o.shipment.Carrier, o.shipment.TrackingNumber, o.shipment.ShippedAt = d.Carrier, d.TrackingNumber, at
		return o.move(CmdShipOrder)
	case OrderDelivered:
		o.shipment.DeliveredAt = at
		return o.move(CmdConfirmDelivery)
	case OrderCompleted:
		return o.move(CmdCompleteOrder)
	case RefundRequested:
		return o.foldRefundRequested(d, at)
	case RefundCompleted:
		r, err := o.pendingRefund(d.RefundID)
		if err != nil {
			return err
		}
		r.Status, r.Settled = RefundStatusCompleted, at
		o.pending -= r.Amount.Amount
		o.refunded += r.Amount.Amount
	case RefundRejected:
		r, err := o.pendingRefund(d.RefundID)
		if err != nil {
			return err
		}
		r.Status, r.Settled, r.Rejection = RefundStatusRejected, at, d.Reason
		o.pending -= r.Amount.Amount
	case OrderRefunded:
		if o.received == 0 || o.refunded != o.received || o.pending != 0 {
			return fmt.Errorf("not fully refunded: received %d, refunded %d, pending %d", o.received, o.refunded, o.pending)
		}
		return o.move(autoRefunded)
	default:
		return fmt.Errorf("unknown event payload %T", d)
	}
	return nil
}

func (o *Order) foldPayment(d PaymentSucceeded, at time.Time) error {
	if d.Amount.Currency != o.total.Currency {
		return fmt.Errorf("payment in %s for an order in %s", d.Amount.Currency, o.total.Currency)
	}
	switch {
	case o.state == StateAwaitingPayment && !d.Late && !d.Extra:
		if d.Amount != o.total {
			return fmt.Errorf("payment of %s does not match the total %s", d.Amount, o.total)
		}
		if err := o.move(CmdConfirmPayment); err != nil {
			return err
		}
		o.payment = payment{ID: d.PaymentID, Provider: d.Provider, Amount: d.Amount, At: at}
	case d.Late && o.state == StateCancelled, d.Extra && o.state != StateCancelled:
		if err := o.move(CmdConfirmPayment); err != nil {
			return err
		}
	default:
		return fmt.Errorf("payment (late=%t, extra=%t) does not fit the state", d.Late, d.Extra)
	}
	o.notePayment(d.PaymentID, paymentSucceeded)
	o.received += d.Amount.Amount
	return nil
}

func (o *Order) foldRefundRequested(d RefundRequested, at time.Time) error {
	if o.state == StatePlaced {
		return fmt.Errorf("no money was received")
	}
	if d.Amount.Currency != o.total.Currency {
		return fmt.Errorf("refund in %s for an order in %s", d.Amount.Currency, o.total.Currency)
	}
	if d.Amount.Amount <= 0 || d.Amount.Amount > o.outstanding() {
		return fmt.Errorf("refund of %d exceeds the %d still refundable", d.Amount.Amount, o.outstanding())
	}
	if _, dup := o.refundIdx[d.RefundID]; dup {
		return fmt.Errorf("refund %s was already requested", d.RefundID)
	}
	if o.refundIdx == nil {
		o.refundIdx = make(map[string]int)
	}
	o.refundIdx[d.RefundID] = len(o.refunds)
	o.refunds = append(o.refunds, &refund{ID: d.RefundID, Amount: d.Amount, Reason: d.Reason,
		Status: RefundStatusRequested, Automatic: d.Automatic, Requested: at})
	o.pending += d.Amount.Amount
	return nil
}

func (o *Order) pendingRefund(id string) (*refund, error) {
	i, ok := o.refundIdx[id]
	if !ok {
		return nil, fmt.Errorf("refund %s was never requested", id)
	}
	r := o.refunds[i]
	if !refundSettleable(r.Status) {
		return nil, fmt.Errorf("refund %s is already %s", id, r.Status)
	}
	return r, nil
}

func (o *Order) notePayment(id string, status int) {
	if o.payments == nil {
		o.payments = make(map[string]int)
	}
	if o.payments[id] != paymentSucceeded { // a success is never overwritten
		o.payments[id] = status
	}
}

// checkPlaced holds a stored OrderPlaced to the invariants PlaceOrder
// enforces, so a replay also catches an order written around the domain:
// it belongs to this stream, has valid lines and its total is their sum.
func checkPlaced(streamOrderID string, d OrderPlaced) error {
	if streamOrderID != "" && d.OrderID != streamOrderID {
		return fmt.Errorf("OrderPlaced names order %q in the stream of order %q", d.OrderID, streamOrderID)
	}
	place := PlaceOrder{Order: d.OrderID, CustomerID: d.CustomerID, Currency: d.Total.Currency, Lines: d.Lines}
	if err := place.Validate(); err != nil {
		return err
	}
	var sum int64
	for _, l := range d.Lines {
		sum, _ = mulAdd(sum, l.Quantity, l.UnitPrice)
	}
	if sum != d.Total.Amount {
		return fmt.Errorf("the total %d is not the sum of the lines %d", d.Total.Amount, sum)
	}
	return nil
}
