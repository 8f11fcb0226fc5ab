package projections

import (
	"context"
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
func (q ListQuery) where(alias string, keys []string, cur []string) (string, []any) {
	var conds []string
	var args []any
	if q.Status != "" {
		conds, args = append(conds, alias+".status = ?"), append(args, q.Status)
	}
	if q.OlderThan > 0 {
		conds, args = append(conds, alias+".updated_at < ?"), append(args, time.Now().Add(-q.OlderThan).UTC().Format(time.RFC3339Nano))
	}
	if cur != nil {
		// Row-value comparison: strictly after the last row of the previous page.
		cols := append([]string{alias + ".updated_at"}, keys...)
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

// ListPayments lists payment rows, oldest change first.
func (s *Store) ListPayments(ctx context.Context, q ListQuery) (Page[PaymentItem], error) {
	var page Page[PaymentItem]
	if err := q.check(PaymentStatuses); err != nil {
		return page, err
	}
	cur, err := decodeCursor(q.Cursor, 2)
	if err != nil {
		return page, err
	}
	where, args := q.where("p", []string{"p.order_id"}, cur)
	rows, err := s.db.QueryContext(ctx, `SELECT p.order_id, p.status, p.currency, p.amount_due, p.paid, p.refunded, p.provider, p.payment_id, p.updated_at
		FROM payments p`+where+` ORDER BY p.updated_at, p.order_id LIMIT ?`, append(args, q.Limit+1)...)
	if err != nil {
		return page, fmt.Errorf("list payments: %w", err)
	}
	defer rows.Close()
	page.Items = []PaymentItem{}
	var updated []string
	for rows.Next() {
		var it PaymentItem
		var u string
		if err := rows.Scan(&it.OrderID, &it.Status, &it.Currency, &it.AmountDue, &it.Paid, &it.Refunded, &it.Provider, &it.PaymentID, &u); err != nil {
			return page, err
		}
		it.UpdatedAt = parseTime(u)
		page.Items, updated = append(page.Items, it), append(updated, u)
	}
	if len(page.Items) > q.Limit {
		page.Items = page.Items[:q.Limit]
		page.NextCursor = encodeCursor(updated[q.Limit-1], page.Items[q.Limit-1].OrderID)
	}
	return page, rows.Err()
}

// ListShipments lists shipment rows, oldest change first.
func (s *Store) ListShipments(ctx context.Context, q ListQuery) (Page[ShipmentItem], error) {
	var page Page[ShipmentItem]
	if err := q.check(ShippingStatuses); err != nil {
		return page, err
	}
	cur, err := decodeCursor(q.Cursor, 2)
	if err != nil {
		return page, err
	}
	where, args := q.where("sh", []string{"sh.order_id"}, cur)
	if q.PaymentStatus != "" {
		if where == "" {
			where = " WHERE p.status = ?"
		} else {
			where += " AND p.status = ?"
		}
		args = append(args, q.PaymentStatus)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT sh.order_id, p.status, sh.status, sh.carrier, sh.tracking_number, sh.shipped_at, sh.delivered_at, sh.updated_at
		FROM shipments sh JOIN payments p ON p.order_id = sh.order_id`+where+` ORDER BY sh.updated_at, sh.order_id LIMIT ?`, append(args, q.Limit+1)...)
	if err != nil {
		return page, fmt.Errorf("list shipments: %w", err)
	}
	defer rows.Close()
	page.Items = []ShipmentItem{}
	var updated []string
	for rows.Next() {
		var it ShipmentItem
		var shipped, delivered, u string
		if err := rows.Scan(&it.OrderID, &it.PaymentStatus, &it.Status, &it.Carrier, &it.TrackingNumber, &shipped, &delivered, &u); err != nil {
			return page, err
		}
		it.ShippedAt, it.DeliveredAt, it.UpdatedAt = optTime(shipped), optTime(delivered), parseTime(u)
		page.Items, updated = append(page.Items, it), append(updated, u)
	}
	if len(page.Items) > q.Limit {
		page.Items = page.Items[:q.Limit]
		page.NextCursor = encodeCursor(updated[q.Limit-1], page.Items[q.Limit-1].OrderID)
	}
	return page, rows.Err()
}

// ListRefunds lists refunds, oldest change first.
func (s *Store) ListRefunds(ctx context.Context, q ListQuery) (Page[RefundItem], error) {
	var page Page[RefundItem]
	if err := q.check(RefundStatuses); err != nil {
		return page, err
	}
	if q.PaymentStatus != "" {
		return page, &InvalidQueryError{"payment_status", "applies to /v1/shipments only"}
	}
	cur, err := decodeCursor(q.Cursor, 3)
	if err != nil {
		return page, err
	}
	where, args := q.where("r", []string{"r.order_id", "r.refund_id"}, cur)
	rows, err := s.db.QueryContext(ctx, `SELECT r.order_id, r.refund_id, r.amount, r.currency, r.reason, r.automatic, r.status, r.requested_at, r.settled_at, r.updated_at
		FROM refunds r`+where+` ORDER BY r.updated_at, r.order_id, r.refund_id LIMIT ?`, append(args, q.Limit+1)...)
	if err != nil {
		return page, fmt.Errorf("list refunds: %w", err)
	}
	defer rows.Close()
	page.Items = []RefundItem{}
	var updated []string
	for rows.Next() {
		var it RefundItem
		var req, settled, u string
		if err := rows.Scan(&it.OrderID, &it.RefundID, &it.Amount, &it.Currency, &it.Reason, &it.Automatic, &it.Status, &req, &settled, &u); err != nil {
			return page, err
		}
		it.RequestedAt, it.SettledAt, it.UpdatedAt = parseTime(req), optTime(settled), parseTime(u)
		page.Items, updated = append(page.Items, it), append(updated, u)
	}
	if len(page.Items) > q.Limit {
		page.Items = page.Items[:q.Limit]
		last := page.Items[q.Limit-1]
		page.NextCursor = encodeCursor(updated[q.Limit-1], last.OrderID, last.RefundID)
	}
	return page, rows.Err()
}

// Stats counts rows per status in every read model.
func (s *Store) Stats(ctx context.Context) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	for _, q := range []struct{ name, sql string }{
		{"orders", `SELECT state, COUNT(*) FROM orders GROUP BY state`},
		{"payments", `SELECT status, COUNT(*) FROM payments GROUP BY status`},
		{"shipments", `SELECT status, COUNT(*) FROM shipments GROUP BY status`},
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
