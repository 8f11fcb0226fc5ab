package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
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
func apply(ctx context.Context, tx *sql.Tx, stmts *statements, se StoredEvent) error {
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
	x := execer{ctx: ctx, tx: tx, stmts: stmts}
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
	if x.newState != "" {
		x.exec(`UPDATE orders SET state = ?, revision = ?, updated_at = ? WHERE order_id = ?`, x.newState, se.Revision, ts, id)
	} else {
		x.exec(`UPDATE orders SET revision = ?, updated_at = ? WHERE order_id = ?`, se.Revision, ts, id)
	}
	return x.err
}

// execer runs statements until the first error.
type execer struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *statements
	err   error
	// newState is the lifecycle state the event moves the order to, if any.
	newState string
}

func (x *execer) exec(query string, args ...any) {
	if x.err != nil {
		return
	}
	stmt, err := x.stmts.get(x.ctx, query)
	if err == nil {
		_, err = x.tx.StmtContext(x.ctx, stmt).ExecContext(x.ctx, args...)
	}
	if err != nil {
		x.err = fmt.Errorf("read model update: %w", err)
	}
}

// statements caches prepared statements: parsing the SQL of every update
// for every event would cost more than running it.
type statements struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (s *statements) get(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[query]; ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if s.m == nil {
		s.m = map[string]*sql.Stmt{}
	}
	s.m[query] = st
	return st, nil
}

func (s *statements) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
	s.m = nil
}

// state records the order's new lifecycle state; it is written with the
// revision at the end of apply, in the same statement.
func (x *execer) state(_ string, s domain.State) { x.newState = string(s) }
