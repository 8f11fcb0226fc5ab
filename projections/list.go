package projections

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// ListQuery selects rows of one read model: by status, by how long they
// have been in it (older_than: last change before now-OlderThan), paged by
// an opaque cursor.
type ListQuery struct {
	Status        string
	PaymentStatus string // shipments only: e.g. paid but not shipped
	OlderThan     time.Duration
	Limit         int
	Cursor        string
}

// Page is one page of rows and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// PaymentItem is a row of GET /v1/payments.
type PaymentItem struct {
	OrderID string `json:"order_id"`
	PaymentRow
}

// ShipmentItem is a row of GET /v1/shipments.
type ShipmentItem struct {
	OrderID       string `json:"order_id"`
	PaymentStatus string `json:"payment_status"`
	ShipmentRow
}

// RefundItem is a row of GET /v1/refunds.
type RefundItem struct {
	OrderID string `json:"order_id"`
	RefundRow
	UpdatedAt time.Time `json:"updated_at"`
}

// The statuses each list accepts.
var (
	PaymentStatuses  = []string{PaymentUnpaid, PaymentPaid, PaymentFailed, PaymentPartiallyRefunded, PaymentRefunded}
	ShippingStatuses = []string{ShippingNotShipped, ShippingShipped, ShippingDelivered}
	RefundStatuses   = []string{string(domain.RefundStatusRequested), string(domain.RefundStatusCompleted), string(domain.RefundStatusRejected)}
)

// InvalidQueryError names the parameter that is wrong and why.
type InvalidQueryError struct{ Param, Reason string }

func (e *InvalidQueryError) Error() string { return e.Param + ": " + e.Reason }

func (q *ListQuery) check(statuses []string) error {
	if q.Status != "" && !slices.Contains(statuses, q.Status) {
		return &InvalidQueryError{"status", fmt.Sprintf("must be one of %s, got %q", strings.Join(statuses, ", "), q.Status)}
	}
	if q.PaymentStatus != "" && !slices.Contains(PaymentStatuses, q.PaymentStatus) {
		return &InvalidQueryError{"payment_status", fmt.Sprintf("must be one of %s, got %q", strings.Join(PaymentStatuses, ", "), q.PaymentStatus)}
	}
	if q.OlderThan < 0 {
		return &InvalidQueryError{"older_than", "must not be negative"}
	}
	switch {
	case q.Limit == 0:
		q.Limit = 50
	case q.Limit < 1 || q.Limit > 500:
		return &InvalidQueryError{"limit", fmt.Sprintf("must be between 1 and 500, got %d", q.Limit)}
	}
	return nil
}

// cursor encodes the sort key of the last row: updated_at, then IDs.
func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

func decodeCursor(c string, n int) ([]string, error) {
	if c == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.Split(string(b), "\x00")
	if err != nil || len(parts) != n {
		return nil, &InvalidQueryError{"cursor", "is not a cursor this API returned"}
	}
	return parts, nil
}

// where builds the shared filters: status, age and cursor position.
func (q ListQuery) where(l listing, cur []string) (string, []any) {
	var conds []string
	var args []any
	if q.Status != "" {
		conds, args = append(conds, l.status+" = ?"), append(args, q.Status)
	}
	if q.PaymentStatus != "" {
		conds, args = append(conds, "payment_status = ?"), append(args, q.PaymentStatus)
	}
	if q.OlderThan > 0 {
		conds, args = append(conds, l.updated+" < ?"), append(args, time.Now().Add(-q.OlderThan).UTC().Format(time.RFC3339Nano))
	}
	if cur != nil {
		// Row-value comparison: strictly after the last row of the previous page.
		cols := append([]string{l.updated}, l.keys...)
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
		conds = append(conds, "("+strings.Join(cols, ", ")+") > ("+marks+")")
		for _, c := range cur {
			args = append(args, c)
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// listing describes one list of rows: where they live, how they sort and
// page (by the time of their last change, then their keys), and how a row
// is read.
type listing struct {
	name     string   // for errors
	from     string   // the table
	cols     string   // the selected columns, ending with updated and the keys
	status   string   // the column status= filters on
	statuses []string // the values it accepts
	updated  string   // the column of the last change, older_than's and the order's
	keys     []string // the tie-breakers after updated, in the cursor too
	// paymentStatus: the list takes payment_status= (shipments).
	paymentStatus bool
}

// scanRow reads one row of a listing; cursor is the row's sort key,
// updated first, as the cursor of the page that ends with it.
type scanRow[T any] func(rows *sql.Rows) (item T, cursor []string, err error)

// list pages through the rows of l that match q, oldest change first.
func list[T any](ctx context.Context, s *Store, l listing, q ListQuery, scan scanRow[T]) (Page[T], error) {
	page := Page[T]{Items: []T{}}
	if err := q.check(l.statuses); err != nil {
		return page, err
	}
	if q.PaymentStatus != "" && !l.paymentStatus {
		return page, &InvalidQueryError{"payment_status", "applies to /v1/shipments only"}
	}
	cur, err := decodeCursor(q.Cursor, 1+len(l.keys))
	if err != nil {
		return page, err
	}
	where, args := q.where(l, cur)
	rows, err := s.query(ctx, `SELECT `+l.cols+` FROM `+l.from+where+
		` ORDER BY `+strings.Join(append([]string{l.updated}, l.keys...), ", ")+` LIMIT ?`, append(args, q.Limit+1)...)
	if err != nil {
		return page, fmt.Errorf("list %s: %w", l.name, err)
	}
	defer rows.Close()
	var last []string
	for rows.Next() {
		if len(page.Items) == q.Limit {
			page.NextCursor = encodeCursor(last...)
			break
		}
		it, cursor, err := scan(rows)
		if err != nil {
			return page, fmt.Errorf("list %s: %w", l.name, err)
		}
		page.Items, last = append(page.Items, it), cursor
	}
	return page, rows.Err()
}

var paymentsListing = listing{name: "payments", from: "order_views",
	cols:   "payment_status, currency, amount_due, paid, refunded, provider, payment_id, payment_updated_at, order_id",
	status: "payment_status", statuses: PaymentStatuses, updated: "payment_updated_at", keys: []string{"order_id"}}

// ListPayments lists payment rows, oldest change first.
func (s *Store) ListPayments(ctx context.Context, q ListQuery) (Page[PaymentItem], error) {
	return list(ctx, s, paymentsListing, q, func(rows *sql.Rows) (PaymentItem, []string, error) {
		var it PaymentItem
		var u string
		err := rows.Scan(&it.Status, &it.Currency, &it.AmountDue, &it.Paid, &it.Refunded, &it.Provider, &it.PaymentID, &u, &it.OrderID)
		it.UpdatedAt = parseTime(u)
		return it, []string{u, it.OrderID}, err
	})
}

var shipmentsListing = listing{name: "shipments", from: "order_views",
	cols:   "payment_status, shipping_status, carrier, tracking_number, shipped_at, delivered_at, shipping_updated_at, order_id",
	status: "shipping_status", statuses: ShippingStatuses, updated: "shipping_updated_at", keys: []string{"order_id"}, paymentStatus: true}

// ListShipments lists shipment rows, oldest change first; q.PaymentStatus
// narrows them, e.g. to paid but not shipped.
func (s *Store) ListShipments(ctx context.Context, q ListQuery) (Page[ShipmentItem], error) {
	return list(ctx, s, shipmentsListing, q, func(rows *sql.Rows) (ShipmentItem, []string, error) {
		var it ShipmentItem
		var shipped, delivered, u string
		err := rows.Scan(&it.PaymentStatus, &it.Status, &it.Carrier, &it.TrackingNumber, &shipped, &delivered, &u, &it.OrderID)
		it.ShippedAt, it.DeliveredAt, it.UpdatedAt = optTime(shipped), optTime(delivered), parseTime(u)
		return it, []string{u, it.OrderID}, err
	})
}

var refundsListing = listing{name: "refunds", from: "refunds",
	cols:   "amount, currency, reason, automatic, status, requested_at, settled_at, updated_at, order_id, refund_id",
	status: "status", statuses: RefundStatuses, updated: "updated_at", keys: []string{"order_id", "refund_id"}}

// ListRefunds lists refunds, oldest change first.
func (s *Store) ListRefunds(ctx context.Context, q ListQuery) (Page[RefundItem], error) {
	return list(ctx, s, refundsListing, q, func(rows *sql.Rows) (RefundItem, []string, error) {
		var it RefundItem
		var req, settled, u string
		err := rows.Scan(&it.Amount, &it.Currency, &it.Reason, &it.Automatic, &it.Status, &req, &settled, &u, &it.OrderID, &it.RefundID)
		it.RequestedAt, it.SettledAt, it.UpdatedAt = parseTime(req), optTime(settled), parseTime(u)
		return it, []string{u, it.OrderID, it.RefundID}, err
	})
}

// Stats counts rows per status in every read model.
func (s *Store) Stats(ctx context.Context) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	for _, q := range []struct{ name, sql string }{
		{"orders", `SELECT state, COUNT(*) FROM order_views GROUP BY state`},
		{"payments", `SELECT payment_status, COUNT(*) FROM order_views GROUP BY payment_status`},
		{"shipments", `SELECT shipping_status, COUNT(*) FROM order_views GROUP BY shipping_status`},
		{"refunds", `SELECT status, COUNT(*) FROM refunds GROUP BY status`},
	} {
		rows, err := s.db.QueryContext(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("stats %s: %w", q.name, err)
		}
		m := map[string]int64{}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return nil, err
			}
			m[k] = n
		}
		rows.Close()
		out[q.name] = m
	}
	return out, nil
}
