package projections

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
)

// Read-model statuses (public API of the query endpoints).
const (
	PaymentUnpaid            = "unpaid"
	PaymentPaid              = "paid"
	PaymentFailed            = "failed"
	PaymentPartiallyRefunded = "partially_refunded"
	PaymentRefunded          = "refunded"

	// PaymentCancelled: the order was cancelled (or its stock rejected)
	// before it was paid; nothing is owed. Money that arrives later is
	// recorded in paid and refunded.
	PaymentCancelled = "cancelled"

	ShippingNotShipped = "not_shipped"
	ShippingShipped    = "shipped"
	ShippingDelivered  = "delivered"
	// ShippingCancelled: the order ended (cancelled, or refunded in full)
	// before it was delivered; no shipment or delivery will follow
	// (shipped_at says whether it had left).
	ShippingCancelled = "cancelled"
)

// timeLayout is how the read models store times: UTC with nine fractional
// digits, so that text order is time order (RFC 3339 with trailing zeros
// trimmed is not: "…05Z" sorts after "…05.1Z").
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// formatTime formats t as the read models store it.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// StoredEvent is an event of an order stream as the projection receives it.
type StoredEvent struct {
	Stream   string
	Revision uint64
	Position uint64
	Type     string
	Data     []byte
	Metadata []byte
	Created  time.Time
}

// orderID extracts the order ID from an "order-<id>" stream name.
func orderID(stream string) (string, bool) {
	id, ok := strings.CutPrefix(stream, "order-")
	return id, ok && id != ""
}

// change is an event decoded for the read models: what apply needs of it.
// The runner decodes on the goroutine that reads the feed, so decoding
// overlaps with writing the previous batch.
type change struct {
	orderID  string // "" when the event is not of an order stream
	revision uint64
	ts       string // when it happened, as formatTime writes it
	data     domain.EventData
	err      error // the event could not be decoded: the projection stops
	// traceParent is the event's trace context (EventTracer).
	traceParent string
}

// decodeChange decodes one stored event.
func decodeChange(se *StoredEvent) change {
	id, ok := orderID(se.Stream)
	if !ok {
		return change{} // not an order stream: nothing to project
	}
	e, err := jsonwire.DecodeEvent(se.Type, se.Data, se.Metadata)
	if err != nil {
		return change{orderID: id, err: fmt.Errorf("%s@%d: %w", se.Stream, se.Revision, err)}
	}
	at := e.Meta.OccurredAt
	if at.IsZero() {
		at = se.Created
	}
	return change{orderID: id, revision: se.Revision, ts: formatTime(at), data: e.Data, traceParent: e.Meta.TraceParent}
}

// placesOrder reports whether c is an order's first event, which creates
// its rows instead of changing stored ones.
func (c change) placesOrder() bool {
	_, ok := c.data.(domain.OrderPlaced)
	return ok
}

// settlesRefund names the refund c settles, if it settles one.
func (c change) settlesRefund() (string, bool) {
	switch d := c.data.(type) {
	case domain.RefundCompleted:
		return d.RefundID, true
	case domain.RefundRejected:
		return d.RefundID, true
	}
	return "", false
}

// apply changes the batch's in-memory rows for one event. The rows are
// written once per batch (see batch.flush), however many events touch them.
//
// Each status keeps the time it took its value (state_since, payment_since,
// shipping_since), set only when the value changes: the stuck-order lists
// measure how long an order has been in the state they name, not how long
// ago it was placed or last touched.
func (b *batch) apply(c change) error {
	o := b.orders[c.orderID]
	if d, ok := c.data.(domain.OrderPlaced); ok {
		if o != nil && o.exists {
			return badEvent(fmt.Errorf("order-%s@%d: order placed twice", c.orderID, c.revision))
		}
		lines, _ := json.Marshal(d.Lines)
		o = &orderView{id: c.orderID, exists: true, isNew: true,
			order: orderRow{customerID: d.CustomerID, currency: d.Total.Currency, total: d.Total.Amount, lines: string(lines),
				state: string(domain.StatePlaced), stateSince: c.ts, placedAt: c.ts},
			payment:  paymentRow{amountDue: d.Total.Amount, status: PaymentUnpaid, since: c.ts, updatedAt: c.ts},
			shipment: shipmentRow{status: ShippingNotShipped, since: c.ts, updatedAt: c.ts}}
		b.orders[c.orderID] = o
		b.touched = append(b.touched, o)
	}
	if o == nil || !o.exists {
		// Events of an order the read models never saw placed (a rebuild
		// that starts after it): only its refunds are recorded.
		o = &orderView{id: c.orderID}
	}
	b.applyRefund(c)
	p, s := &o.payment, &o.shipment
	switch d := c.data.(type) {
	case domain.StockReserved:
		o.setState(domain.StateAwaitingPayment, c.ts)
	case domain.StockRejected, domain.OrderCancelled:
		o.setState(domain.StateCancelled, c.ts)
		if p.status == PaymentUnpaid || p.status == PaymentFailed {
			p.setStatus(PaymentCancelled, c.ts)
		}
		if s.status == ShippingNotShipped {
			s.setStatus(ShippingCancelled, c.ts)
		}
	case domain.PaymentSucceeded:
		p.paid, p.updatedAt = p.paid+d.Amount.Amount, c.ts
		if !d.Late && !d.Extra {
			p.setStatus(PaymentPaid, c.ts)
			p.provider, p.paymentID = d.Provider, d.PaymentID
			o.setState(domain.StatePaid, c.ts)
		}
	case domain.PaymentAmountMismatched:
		p.paid, p.updatedAt = p.paid+d.Amount.Amount, c.ts
	case domain.PaymentFailed:
		if p.status == PaymentUnpaid || p.status == PaymentFailed {
			p.setStatus(PaymentFailed, c.ts)
		}
	case domain.OrderShipped:
		s.setStatus(ShippingShipped, c.ts)
		s.carrier, s.trackingNumber, s.shippedAt = d.Carrier, d.TrackingNumber, c.ts
		o.setState(domain.StateShipped, c.ts)
	case domain.OrderDelivered:
		s.setStatus(ShippingDelivered, c.ts)
		s.deliveredAt = c.ts
		o.setState(domain.StateDelivered, c.ts)
	case domain.OrderCompleted:
		o.setState(domain.StateCompleted, c.ts)
	case domain.RefundCompleted:
		p.refunded, p.updatedAt = p.refunded+d.Amount.Amount, c.ts
		if p.refunded >= p.paid {
			p.setStatus(PaymentRefunded, c.ts)
		} else {
			p.setStatus(PaymentPartiallyRefunded, c.ts)
		}
	case domain.OrderRefunded:
		o.setState(domain.StateRefunded, c.ts)
		if s.status == ShippingNotShipped || s.status == ShippingShipped {
			s.setStatus(ShippingCancelled, c.ts)
		}
	}
	o.order.revision, o.order.updatedAt = c.revision, c.ts
	return nil
}

// setState moves the order to state at ts; staying in it changes nothing.
func (o *orderView) setState(state domain.State, ts string) {
	if o.order.state != string(state) {
		o.order.state, o.order.stateSince = string(state), ts
	}
}

// setStatus records the payment's status at ts: since changes only with
// the status, updated_at with every change of the row.
func (p *paymentRow) setStatus(status, ts string) {
	if p.status != status {
		p.status, p.since = status, ts
	}
	p.updatedAt = ts
}

// setStatus records the shipment's status at ts, as paymentRow.setStatus.
func (s *shipmentRow) setStatus(status, ts string) {
	if s.status != status {
		s.status, s.since = status, ts
	}
	s.updatedAt = ts
}

// applyRefund changes the refund rows for the refund events.
func (b *batch) applyRefund(c change) {
	settle := func(id, status string) {
		if r := b.refunds[refundKey{c.orderID, id}]; r != nil && r.exists {
			r.status, r.settledAt, r.updatedAt, r.dirty = status, c.ts, c.ts, true
		}
	}
	switch d := c.data.(type) {
	case domain.RefundRequested:
		r := &refundRow{orderID: c.orderID, refundID: d.RefundID, exists: true, isNew: true, dirty: true,
			currency: d.Amount.Currency, amount: d.Amount.Amount, reason: d.Reason, automatic: d.Automatic,
			status: string(domain.RefundStatusRequested), requestedAt: c.ts, updatedAt: c.ts}
		b.refunds[refundKey{c.orderID, d.RefundID}] = r
		b.touchedRefunds = append(b.touchedRefunds, r)
	case domain.RefundCompleted:
		settle(d.RefundID, string(domain.RefundStatusCompleted))
	case domain.RefundRejected:
		settle(d.RefundID, string(domain.RefundStatusRejected))
	}
}
