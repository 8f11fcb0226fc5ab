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

// ListQuery selects rows of one list: by status (the lifecycle state for
// orders), by how long they have been in it, paged by an opaque cursor.
type ListQuery struct {
	Status        string // orders: the lifecycle state
	PaymentStatus string // shipments only: e.g. paid but not shipped
	Customer      string // orders only
	// OlderThan keeps the rows that have been in the state or status the
	// query names for longer than this (see each List method).
	OlderThan time.Duration
	Limit     int
	Cursor    string
}

// Page is one page of rows and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// OrderItem is a row of GET /v1/orders: an order's summary without its
// lines and refunds.
type OrderItem struct {
	OrderID        string       `json:"order_id"`
	CustomerID     string       `json:"customer_id"`
	State          string       `json:"state"`
	StateSince     time.Time    `json:"state_since"`
	Total          domain.Money `json:"total"`
	PaymentStatus  string       `json:"payment_status"`
	ShippingStatus string       `json:"shipping_status"`
	Revision       int64        `json:"revision"`
	PlacedAt       time.Time    `json:"placed_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
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
	OrderStates      = states()
	PaymentStatuses  = []string{PaymentUnpaid, PaymentPaid, PaymentFailed, PaymentPartiallyRefunded, PaymentRefunded, PaymentCancelled}
	ShippingStatuses = []string{ShippingNotShipped, ShippingShipped, ShippingDelivered, ShippingCancelled}
	RefundStatuses   = []string{string(domain.RefundStatusRequested), string(domain.RefundStatusCompleted), string(domain.RefundStatusRejected)}
)

func states() []string {
	var out []string
	for _, s := range domain.States() {
		out = append(out, string(s))
	}
	return out
}

// InvalidQueryError names the parameter that is wrong and why.
type InvalidQueryError struct{ Param, Reason string }

func (e *InvalidQueryError) Error() string { return e.Param + ": " + e.Reason }

// maxCustomerLen is the longest customer ID the domain accepts.
const maxCustomerLen = 128

func (q *ListQuery) check(l listing) error {
	if q.Status != "" && !slices.Contains(l.statuses, q.Status) {
		return &InvalidQueryError{l.statusParam, fmt.Sprintf("must be one of %s, got %s", strings.Join(l.statuses, ", "), quote(q.Status))}
	}
	if q.PaymentStatus != "" {
		if !l.paymentStatus {
			return &InvalidQueryError{"payment_status", "applies to /v1/shipments only"}
		}
		if !slices.Contains(PaymentStatuses, q.PaymentStatus) {
			return &InvalidQueryError{"payment_status", fmt.Sprintf("must be one of %s, got %s", strings.Join(PaymentStatuses, ", "), quote(q.PaymentStatus))}
		}
	}
	if q.Customer != "" {
		if !l.customer {
			return &InvalidQueryError{"customer", "applies to /v1/orders only"}
		}
		if len(q.Customer) > maxCustomerLen {
			return &InvalidQueryError{"customer", fmt.Sprintf("must be at most %d characters, got %d", maxCustomerLen, len(q.Customer))}
		}
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

// encodeCursor encodes the sort key of the last row of a page of the list
// tagged tag.
func encodeCursor(tag string, key []string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tag + "\x00" + strings.Join(key, "\x00")))
}

// decodeCursor decodes a cursor of the list tagged tag, with a sort key of
// n parts.
func decodeCursor(c, tag string, n int) ([]string, error) {
	if c == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	parts := strings.Split(string(b), "\x00")
	if err != nil || len(parts) != n+1 || parts[0] != tag {
		return nil, &InvalidQueryError{"cursor", "is not a cursor this list returned; start without one, or pass the next_cursor of the previous page of the same query"}
	}
	return parts[1:], nil
}

// where builds the filters: status, payment status, customer, age and
// cursor position.
func (q ListQuery) where(l listing, cur []string) (string, []any) {
	var conds []string
	var args []any
	if q.Status != "" {
		conds, args = append(conds, l.status+" = ?"), append(args, q.Status)
	}
	if q.PaymentStatus != "" {
		conds, args = append(conds, "payment_status = ?"), append(args, q.PaymentStatus)
	}
	if q.Customer != "" {
		conds, args = append(conds, "customer_id = ?"), append(args, q.Customer)
	}
	if q.OlderThan > 0 {
		conds, args = append(conds, l.age+" < ?"), append(args, formatTime(time.Now().Add(-q.OlderThan)))
	}
	if cur != nil {
		// Row-value comparison: strictly after the last row of the
		// previous page, in the list's order.
		cols := append([]string{l.sort}, l.keys...)
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
		op := " > "
		if l.desc {
			op = " < "
		}
		conds = append(conds, "("+strings.Join(cols, ", ")+")"+op+"("+marks+")")
		for _, c := range cur {
			args = append(args, c)
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// listing describes one list of rows: where they live, what filters it
// takes, how old a row is, and how the rows sort and page (by a time, then
// their keys).
type listing struct {
	name     string   // for errors
	tag      string   // in its cursors, so a cursor of another list is refused
	from     string   // the table
	cols     string   // the selected columns, which the list's scanRow reads
	status   string   // the column status= filters on
	statuses []string // the values it accepts
	// statusParam names the parameter that fills ListQuery.Status.
	statusParam string
	// paymentStatus: the list takes payment_status= (shipments);
	// customer: the list takes customer= (orders).
	paymentStatus, customer bool
	age                     string   // what older_than compares: when the row entered its state or status
	sort                    string   // what the rows sort by, before keys
	desc                    bool     // newest first
	keys                    []string // the tie-breakers after sort, in the cursor too
}

// scanRow reads one row of a listing's cols and then its sort value into
// sortKey; it returns the row and its keys.
type scanRow[T any] func(rows *sql.Rows, sortKey *string) (item T, keys []string, err error)

// list pages through the rows of l that match q, in l's order.
func list[T any](ctx context.Context, s *Store, l listing, q ListQuery, scan scanRow[T]) (Page[T], error) {
	page := Page[T]{Items: []T{}}
	if err := q.check(l); err != nil {
		return page, err
	}
	cur, err := decodeCursor(q.Cursor, l.tag, 1+len(l.keys))
	if err != nil {
		return page, err
	}
	where, args := q.where(l, cur)
	order := strings.Join(append([]string{l.sort}, l.keys...), ", ")
	if l.desc {
		order = strings.Join(append([]string{l.sort}, l.keys...), " DESC, ") + " DESC"
	}
	rows, err := s.query(ctx, `SELECT `+l.cols+`, `+l.sort+` FROM `+l.from+where+` ORDER BY `+order+` LIMIT ?`, append(args, q.Limit+1)...)
	if err != nil {
		return page, fmt.Errorf("list %s: %w", l.name, err)
	}
	defer rows.Close()
	var last []string
	for rows.Next() {
		if len(page.Items) == q.Limit {
			page.NextCursor = encodeCursor(l.tag, last)
			break
		}
		var sortKey string
		it, keys, err := scan(rows, &sortKey)
		if err != nil {
			return page, fmt.Errorf("list %s: %w", l.name, err)
		}
		page.Items, last = append(page.Items, it), append([]string{sortKey}, keys...)
	}
	return page, rows.Err()
}

var ordersListing = listing{name: "orders", tag: "orders", from: "order_views",
	cols:   "order_id, customer_id, state, state_since, total, currency, payment_status, shipping_status, revision, placed_at, updated_at",
	status: "state", statuses: OrderStates, statusParam: "state", customer: true,
	age: "state_since", sort: "placed_at", desc: true, keys: []string{"order_id"}}

// ListOrders lists order summaries, newest first; q.Status is the
// lifecycle state, and q.OlderThan counts from when the order entered the
// state it is in: ?state=paid&older_than=24h is what has been waiting to
// ship for a day.
func (s *Store) ListOrders(ctx context.Context, q ListQuery) (Page[OrderItem], error) {
	return list(ctx, s, ordersListing, q, func(rows *sql.Rows, sortKey *string) (OrderItem, []string, error) {
		var it OrderItem
		var since, placed, updated string
		err := rows.Scan(&it.OrderID, &it.CustomerID, &it.State, &since, &it.Total.Amount, &it.Total.Currency,
			&it.PaymentStatus, &it.ShippingStatus, &it.Revision, &placed, &updated, sortKey)
		it.StateSince, it.PlacedAt, it.UpdatedAt = parseTime(since), parseTime(placed), parseTime(updated)
		return it, []string{it.OrderID}, err
	})
}

var paymentsListing = listing{name: "payments", tag: "payments", from: "order_views",
	cols:   "payment_status, payment_since, currency, amount_due, paid, refunded, provider, payment_id, payment_updated_at, order_id",
	status: "payment_status", statuses: PaymentStatuses, statusParam: "status",
	age: "payment_since", sort: "payment_since", keys: []string{"order_id"}}

// ListPayments lists payment rows, longest in their status first;
// q.OlderThan counts from when the payment took its status.
func (s *Store) ListPayments(ctx context.Context, q ListQuery) (Page[PaymentItem], error) {
	return list(ctx, s, paymentsListing, q, func(rows *sql.Rows, sortKey *string) (PaymentItem, []string, error) {
		var it PaymentItem
		var since, u string
		err := rows.Scan(&it.Status, &since, &it.Currency, &it.AmountDue, &it.Paid, &it.Refunded, &it.Provider, &it.PaymentID, &u, &it.OrderID, sortKey)
		it.StatusSince, it.UpdatedAt = parseTime(since), parseTime(u)
		return it, []string{it.OrderID}, err
	})
}

// shipmentsListing lists shipments by the time they took their status;
// with payment_status, by the time the order has had both statuses, the
// later of the two: paid and not shipped counts from the payment, not
// from the order's placement.
func shipmentsListing(q ListQuery) listing {
	l := listing{name: "shipments", tag: "shipments", from: "order_views",
		cols:   "payment_status, shipping_status, shipping_since, carrier, tracking_number, shipped_at, delivered_at, shipping_updated_at, order_id",
		status: "shipping_status", statuses: ShippingStatuses, statusParam: "status", paymentStatus: true,
		age: "shipping_since", sort: "shipping_since", keys: []string{"order_id"}}
	if q.PaymentStatus != "" {
		both := "CASE WHEN payment_since > shipping_since THEN payment_since ELSE shipping_since END"
		l.tag, l.age, l.sort = "shipments+payment", both, both
	}
	return l
}

// ListShipments lists shipment rows, longest in their status first;
// q.PaymentStatus narrows them, e.g. to paid but not shipped, and then
// q.OlderThan counts from when the order had both statuses.
func (s *Store) ListShipments(ctx context.Context, q ListQuery) (Page[ShipmentItem], error) {
	return list(ctx, s, shipmentsListing(q), q, func(rows *sql.Rows, sortKey *string) (ShipmentItem, []string, error) {
		var it ShipmentItem
		var since, shipped, delivered, u string
		err := rows.Scan(&it.PaymentStatus, &it.Status, &since, &it.Carrier, &it.TrackingNumber, &shipped, &delivered, &u, &it.OrderID, sortKey)
		it.StatusSince, it.ShippedAt, it.DeliveredAt, it.UpdatedAt = parseTime(since), optTime(shipped), optTime(delivered), parseTime(u)
		return it, []string{it.OrderID}, err
	})
}

var refundsListing = listing{name: "refunds", tag: "refunds", from: "refunds",
	cols:   "amount, currency, reason, automatic, status, requested_at, settled_at, updated_at, order_id, refund_id",
	status: "status", statuses: RefundStatuses, statusParam: "status",
	age: "updated_at", sort: "updated_at", keys: []string{"order_id", "refund_id"}}

// ListRefunds lists refunds, longest in their status first: a refund's
// row changes only when its status does, so q.OlderThan counts from the
// request for a requested refund, from its settlement for the others.
func (s *Store) ListRefunds(ctx context.Context, q ListQuery) (Page[RefundItem], error) {
	return list(ctx, s, refundsListing, q, func(rows *sql.Rows, sortKey *string) (RefundItem, []string, error) {
		var it RefundItem
		var req, settled, u string
		err := rows.Scan(&it.Amount, &it.Currency, &it.Reason, &it.Automatic, &it.Status, &req, &settled, &u, &it.OrderID, &it.RefundID, sortKey)
		it.RequestedAt, it.SettledAt, it.UpdatedAt = parseTime(req), optTime(settled), parseTime(u)
		return it, []string{it.OrderID, it.RefundID}, err
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
