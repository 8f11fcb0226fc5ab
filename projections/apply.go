package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/domain"
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

// apply changes the read models for one event inside tx.
func apply(ctx context.Context, tx *sql.Tx, se StoredEvent) error {
	id, ok := orderID(se.Stream)
	if !ok {
		return nil // not an order stream: nothing to project
	}
	e, err := domain.DecodeEvent(se.Type, se.Data, se.Metadata)
	if err != nil {
		return fmt.Errorf("%s@%d: %w", se.Stream, se.Revision, err)
	}
	at := e.Meta.OccurredAt
	if at.IsZero() {
		at = se.Created
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	x := execer{ctx: ctx, tx: tx}
	switch d := e.Data.(type) {
	case domain.OrderPlaced:
		lines, _ := json.Marshal(d.Lines)
		x.exec(`INSERT INTO orders (order_id, customer_id, currency, total, lines, state, revision, placed_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, d.CustomerID, d.Total.Currency, d.Total.Amount, string(lines), domain.StatePlaced, se.Revision, ts, ts)
		x.exec(`INSERT INTO payments (order_id, currency, amount_due, status, updated_at) VALUES (?, ?, ?, ?, ?)`,
			id, d.Total.Currency, d.Total.Amount, PaymentUnpaid, ts)
		x.exec(`INSERT INTO shipments (order_id, status, updated_at) VALUES (?, ?, ?)`, id, ShippingNotShipped, ts)
		return x.err
	case domain.StockReserved:
		x.state(id, domain.StateAwaitingPayment)
	case domain.StockRejected, domain.OrderCancelled:
		x.state(id, domain.StateCancelled)
	case domain.PaymentSucceeded:
		x.exec(`UPDATE payments SET paid = paid + ?, updated_at = ? WHERE order_id = ?`, d.Amount.Amount, ts, id)
		if !d.Late && !d.Extra {
			x.exec(`UPDATE payments SET status = ?, provider = ?, payment_id = ? WHERE order_id = ?`, PaymentPaid, d.Provider, d.PaymentID, id)
			x.state(id, domain.StatePaid)
		}
	case domain.PaymentAmountMismatched:
		x.exec(`UPDATE payments SET paid = paid + ?, updated_at = ? WHERE order_id = ?`, d.Amount.Amount, ts, id)
	case domain.PaymentFailed:
		x.exec(`UPDATE payments SET status = ?, updated_at = ? WHERE order_id = ? AND status IN (?, ?)`,
			PaymentFailed, ts, id, PaymentUnpaid, PaymentFailed)
	case domain.OrderShipped:
		x.exec(`UPDATE shipments SET status = ?, carrier = ?, tracking_number = ?, shipped_at = ?, updated_at = ? WHERE order_id = ?`,
			ShippingShipped, d.Carrier, d.TrackingNumber, ts, ts, id)
		x.state(id, domain.StateShipped)
	case domain.OrderDelivered:
		x.exec(`UPDATE shipments SET status = ?, delivered_at = ?, updated_at = ? WHERE order_id = ?`, ShippingDelivered, ts, ts, id)
		x.state(id, domain.StateDelivered)
	case domain.OrderCompleted:
		x.state(id, domain.StateCompleted)
	case domain.RefundRequested:
		x.exec(`INSERT INTO refunds (order_id, refund_id, currency, amount, reason, automatic, status, requested_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, d.RefundID, d.Amount.Currency, d.Amount.Amount, d.Reason, d.Automatic,
			string(domain.RefundStatusRequested), ts, ts)
	case domain.RefundCompleted:
		x.exec(`UPDATE refunds SET status = ?, settled_at = ?, updated_at = ? WHERE order_id = ? AND refund_id = ?`,
			string(domain.RefundStatusCompleted), ts, ts, id, d.RefundID)
		x.exec(`UPDATE payments SET refunded = refunded + ?, updated_at = ? WHERE order_id = ?`, d.Amount.Amount, ts, id)
		x.exec(`UPDATE payments SET status = CASE WHEN refunded >= paid THEN ? ELSE ? END WHERE order_id = ?`,
			PaymentRefunded, PaymentPartiallyRefunded, id)
	case domain.RefundRejected:
		x.exec(`UPDATE refunds SET status = ?, settled_at = ?, updated_at = ? WHERE order_id = ? AND refund_id = ?`,
			string(domain.RefundStatusRejected), ts, ts, id, d.RefundID)
	case domain.OrderRefunded:
		x.state(id, domain.StateRefunded)
	}
	x.exec(`UPDATE orders SET revision = ?, updated_at = ? WHERE order_id = ?`, se.Revision, ts, id)
	return x.err
}

// execer runs statements until the first error.
type execer struct {
	ctx context.Context
	tx  *sql.Tx
	err error
}

func (x *execer) exec(query string, args ...any) {
	if x.err != nil {
		return
	}
	if _, err := x.tx.ExecContext(x.ctx, query, args...); err != nil {
		x.err = fmt.Errorf("read model update: %w", err)
	}
}

func (x *execer) state(id string, s domain.State) {
	x.exec(`UPDATE orders SET state = ? WHERE order_id = ?`, string(s), id)
}
