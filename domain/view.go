package domain

import "time"

// OrderView is a JSON snapshot of an order as the aggregate sees it; the
// CLI's `ordo order get` prints it.
type OrderView struct {
	OrderID    string       `json:"order_id"`
	State      State        `json:"state"`
	Revision   int64        `json:"revision"`
	CustomerID string       `json:"customer_id"`
	Lines      []Line       `json:"lines"`
	Total      Money        `json:"total"`
	Received   Money        `json:"received"`
	Refunded   Money        `json:"refunded"`
	Pending    Money        `json:"refund_pending"`
	Payment    *PaymentView `json:"payment,omitempty"`
	Shipment   *ShipView    `json:"shipment,omitempty"`
	Refunds    []RefundView `json:"refunds"`
	Cancelled  string       `json:"cancel_reason,omitempty"`
	PlacedAt   time.Time    `json:"placed_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
}

// PaymentView is the payment that paid the order.
type PaymentView struct {
	PaymentID string    `json:"payment_id"`
	Provider  string    `json:"provider,omitempty"`
	Amount    Money     `json:"amount"`
	PaidAt    time.Time `json:"paid_at"`
}

// ShipView is the shipment of the order.
type ShipView struct {
	Carrier        string     `json:"carrier"`
	TrackingNumber string     `json:"tracking_number"`
	ShippedAt      time.Time  `json:"shipped_at"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
}

// RefundView is one refund.
type RefundView struct {
	RefundID  string       `json:"refund_id"`
	Amount    Money        `json:"amount"`
	Reason    string       `json:"reason"`
	Status    RefundStatus `json:"status"`
	Automatic bool         `json:"automatic"`
	Requested time.Time    `json:"requested_at"`
	Settled   *time.Time   `json:"settled_at,omitempty"`
	Rejection string       `json:"rejection_reason,omitempty"`
}

// View returns a snapshot of the order.
func (o *Order) View() OrderView {
	cur := o.total.Currency
	v := OrderView{
		OrderID: o.id, State: o.state, Revision: o.revision, CustomerID: o.customerID,
		Lines: append([]Line(nil), o.lines...), Total: o.total,
		Received: Money{o.received, cur}, Refunded: Money{o.refunded, cur}, Pending: Money{o.pending, cur},
		Refunds: make([]RefundView, 0, len(o.refunds)), Cancelled: o.cancelReason,
		PlacedAt: o.placedAt, UpdatedAt: o.updatedAt,
	}
	if o.payment.ID != "" {
		v.Payment = &PaymentView{PaymentID: o.payment.ID, Provider: o.payment.Provider, Amount: o.payment.Amount, PaidAt: o.payment.At}
	}
	if o.shipment.Carrier != "" {
		s := &ShipView{Carrier: o.shipment.Carrier, TrackingNumber: o.shipment.TrackingNumber, ShippedAt: o.shipment.ShippedAt}
		if !o.shipment.DeliveredAt.IsZero() {
			at := o.shipment.DeliveredAt
			s.DeliveredAt = &at
		}
		v.Shipment = s
	}
	for _, r := range o.refunds {
		rv := RefundView{RefundID: r.ID, Amount: r.Amount, Reason: r.Reason, Status: r.Status,
			Automatic: r.Automatic, Requested: r.Requested, Rejection: r.Rejection}
		if !r.Settled.IsZero() {
			at := r.Settled
			rv.Settled = &at
		}
		v.Refunds = append(v.Refunds, rv)
	}
	return v
}
