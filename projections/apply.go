package projections

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/domain/fastjson"
)

// Read-model statuses (public API of the query endpoints).
const (
	PaymentUnpaid            = "unpaid"
	PaymentPaid              = "paid"
	PaymentFailed            = "failed"
	PaymentPartiallyRefunded = "partially_refunded"
	PaymentRefunded          = "refunded"

	ShippingNotShipped = "not_shipped"
	ShippingShipped    = "shipped"
	ShippingDelivered  = "delivered"
)

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
	ts       string // when it happened, RFC 3339 in UTC
	data     domain.EventData
	err      error // the event could not be decoded: the projection stops
}

// decodeChange decodes one stored event.
func decodeChange(se *StoredEvent) change {
	id, ok := orderID(se.Stream)
	if !ok {
		return change{} // not an order stream: nothing to project
	}
	e, err := fastjson.DecodeEvent(se.Type, se.Data, se.Metadata)
	if err != nil {
		return change{orderID: id, err: fmt.Errorf("%s@%d: %w", se.Stream, se.Revision, err)}
	}
	at := e.Meta.OccurredAt
	if at.IsZero() {
		at = se.Created
	}
	return change{orderID: id, revision: se.Revision, ts: at.UTC().Format(time.RFC3339Nano), data: e.Data}
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
func (b *batch) apply(c change) error {
	o := b.orders[c.orderID]
	if d, ok := c.data.(domain.OrderPlaced); ok {
		if o != nil && o.exists {
			return fmt.Errorf("order-%s@%d: order placed twice", c.orderID, c.revision)
		}
		lines, _ := json.Marshal(d.Lines)
		o = &orderView{id: c.orderID, exists: true, isNew: true,
			order:    orderRow{customerID: d.CustomerID, currency: d.Total.Currency, total: d.Total.Amount, lines: string(lines), state: string(domain.StatePlaced), placedAt: c.ts},
			payment:  paymentRow{amountDue: d.Total.Amount, status: PaymentUnpaid, updatedAt: c.ts},
			shipment: shipmentRow{status: ShippingNotShipped, updatedAt: c.ts}}
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
		o.order.state = string(domain.StateAwaitingPayment)
	case domain.StockRejected, domain.OrderCancelled:
		o.order.state = string(domain.StateCancelled)
	case domain.PaymentSucceeded:
		p.paid, p.updatedAt = p.paid+d.Amount.Amount, c.ts
		if !d.Late && !d.Extra {
			p.status, p.provider, p.paymentID = PaymentPaid, d.Provider, d.PaymentID
			o.order.state = string(domain.StatePaid)
		}
	case domain.PaymentAmountMismatched:
		p.paid, p.updatedAt = p.paid+d.Amount.Amount, c.ts
	case domain.PaymentFailed:
		if p.status == PaymentUnpaid || p.status == PaymentFailed {
			p.status, p.updatedAt = PaymentFailed, c.ts
		}
	case domain.OrderShipped:
		s.status, s.carrier, s.trackingNumber, s.shippedAt, s.updatedAt = ShippingShipped, d.Carrier, d.TrackingNumber, c.ts, c.ts
		o.order.state = string(domain.StateShipped)
	case domain.OrderDelivered:
		s.status, s.deliveredAt, s.updatedAt = ShippingDelivered, c.ts, c.ts
		o.order.state = string(domain.StateDelivered)
	case domain.OrderCompleted:
		o.order.state = string(domain.StateCompleted)
	case domain.RefundCompleted:
		p.refunded, p.updatedAt = p.refunded+d.Amount.Amount, c.ts
		p.status = PaymentPartiallyRefunded
		if p.refunded >= p.paid {
			p.status = PaymentRefunded
		}
	case domain.OrderRefunded:
		o.order.state = string(domain.StateRefunded)
	}
	o.order.revision, o.order.updatedAt = c.revision, c.ts
	return nil
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
