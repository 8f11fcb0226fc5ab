package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// OrderDetails is an order's summary with its payment, shipping and refund
// status, as GET /v1/orders/{id} returns it.
type OrderDetails struct {
	OrderID    string        `json:"order_id"`
	CustomerID string        `json:"customer_id"`
	State      string        `json:"state"`
	StateSince time.Time     `json:"state_since"` // when the order entered State
	Revision   int64         `json:"revision"`
	Total      domain.Money  `json:"total"`
	Lines      []domain.Line `json:"lines"`
	PlacedAt   time.Time     `json:"placed_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
	Payment    PaymentRow    `json:"payment"`
	Shipping   ShipmentRow   `json:"shipping"`
	Refunds    []RefundRow   `json:"refunds"`
}

// PaymentRow is the payment status of an order.
type PaymentRow struct {
	Status      string    `json:"status"`
	StatusSince time.Time `json:"status_since"` // when the payment took Status
	Currency    string    `json:"currency"`
	AmountDue   int64     `json:"amount_due"`
	Paid        int64     `json:"paid"`
	Refunded    int64     `json:"refunded"`
	Provider    string    `json:"provider,omitempty"`
	PaymentID   string    `json:"payment_id,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ShipmentRow is the shipping status of an order.
type ShipmentRow struct {
	Status         string     `json:"status"`
	StatusSince    time.Time  `json:"status_since"` // when the shipment took Status
	Carrier        string     `json:"carrier,omitempty"`
	TrackingNumber string     `json:"tracking_number,omitempty"`
	ShippedAt      *time.Time `json:"shipped_at,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// RefundRow is one refund.
type RefundRow struct {
	RefundID    string     `json:"refund_id"`
	Amount      int64      `json:"amount"`
	Currency    string     `json:"currency"`
	Reason      string     `json:"reason"`
	Automatic   bool       `json:"automatic"`
	Status      string     `json:"status"`
	RequestedAt time.Time  `json:"requested_at"`
	SettledAt   *time.Time `json:"settled_at,omitempty"`
}

// ErrNotFound: no such order in the read models (yet).
var ErrNotFound = errors.New("order not found in the read models")

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func optTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := parseTime(s)
	return &t
}

// GetOrder returns the read-model view of one order.
func (s *Store) GetOrder(ctx context.Context, id string) (OrderDetails, error) {
	var o OrderDetails
	var lines, placed, updated, paymentUpdated, shipped, delivered, shippingUpdated, stateSince, paymentSince, shippingSince string
	p, sh := &o.Payment, &o.Shipping
	err := s.queryRow(ctx, `SELECT order_id, customer_id, state, revision, total, currency, lines, placed_at, updated_at,
		payment_status, amount_due, paid, refunded, provider, payment_id, payment_updated_at,
		shipping_status, carrier, tracking_number, shipped_at, delivered_at, shipping_updated_at,
		state_since, payment_since, shipping_since
		FROM order_views WHERE order_id = ?`, id).Scan(&o.OrderID, &o.CustomerID, &o.State, &o.Revision, &o.Total.Amount, &o.Total.Currency, &lines, &placed, &updated,
		&p.Status, &p.AmountDue, &p.Paid, &p.Refunded, &p.Provider, &p.PaymentID, &paymentUpdated,
		&sh.Status, &sh.Carrier, &sh.TrackingNumber, &shipped, &delivered, &shippingUpdated,
		&stateSince, &paymentSince, &shippingSince)
	if errors.Is(err, sql.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("read order %s: %w", id, err)
	}
	_ = json.Unmarshal([]byte(lines), &o.Lines)
	o.PlacedAt, o.UpdatedAt, o.StateSince = parseTime(placed), parseTime(updated), parseTime(stateSince)
	p.Currency, p.UpdatedAt, p.StatusSince = o.Total.Currency, parseTime(paymentUpdated), parseTime(paymentSince)
	sh.ShippedAt, sh.DeliveredAt, sh.UpdatedAt, sh.StatusSince = optTime(shipped), optTime(delivered), parseTime(shippingUpdated), parseTime(shippingSince)
	rows, err := s.query(ctx, `SELECT refund_id, amount, currency, reason, automatic, status, requested_at, settled_at
		FROM refunds WHERE order_id = ? ORDER BY requested_at, refund_id`, id)
	if err != nil {
		return o, fmt.Errorf("read refunds of %s: %w", id, err)
	}
	defer rows.Close()
	o.Refunds = []RefundRow{}
	for rows.Next() {
		var r RefundRow
		var req, settled string
		if err := rows.Scan(&r.RefundID, &r.Amount, &r.Currency, &r.Reason, &r.Automatic, &r.Status, &req, &settled); err != nil {
			return o, err
		}
		r.RequestedAt, r.SettledAt = parseTime(req), optTime(settled)
		o.Refunds = append(o.Refunds, r)
	}
	return o, rows.Err()
}

// query runs a read-only query through a prepared statement: the queries
// are few and run often, and preparing one costs more than running it.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	stmt, err := s.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	stmt, err := s.stmts.get(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return stmt.QueryRowContext(ctx, args...)
}
