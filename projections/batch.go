package projections

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ordo-dev/ordo/domain"
)

// A batch holds the rows a batch of events changes, keyed by order, so
// that every row is read at most once and written once per batch — with
// multi-row statements — instead of once per event. The events of one
// order often arrive close together (a command appends several, a
// catch-up or rebuild reads them all), and then a batch turns them into
// one write of the order's row.
type batch struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *statements
	// bulkInsert, if set, writes the rows the batch creates instead of
	// multi-row INSERTs (PostgreSQL's COPY, in a rebuild's bulk load).
	bulkInsert func(t table, rows [][]any) error
	// cache, if set, holds stored order rows, read instead of loading them.
	cache *rowCache

	orders         map[string]*orderView
	touched        []*orderView // in first-touch order, for deterministic writes
	refunds        map[refundKey]*refundRow
	touchedRefunds []*refundRow
}

// orderView is an order's row in order_views: its summary, payment and
// shipping status.
type orderView struct {
	id     string
	exists bool // the order was placed (in the database or in this batch)
	isNew  bool // placed in this batch: its row is inserted, not updated

	order    orderRow
	payment  paymentRow
	shipment shipmentRow
}

type orderRow struct {
	customerID, currency string
	total                int64
	lines, state         string
	stateSince           string // when the order entered state
	revision             uint64
	placedAt, updatedAt  string
}

type paymentRow struct {
	status                    string
	since                     string // when status took its value
	amountDue, paid, refunded int64
	provider, paymentID       string
	updatedAt                 string
}

type shipmentRow struct {
	status, since                     string
	carrier, trackingNumber           string
	shippedAt, deliveredAt, updatedAt string
}

type refundKey struct{ orderID, refundID string }

type refundRow struct {
	orderID, refundID string
	exists, isNew     bool
	dirty             bool

	currency                                  string
	amount                                    int64
	reason                                    string
	automatic                                 bool
	status, requestedAt, settledAt, updatedAt string
}

// table describes a read-model table for the batch's multi-row writes.
type table struct {
	name string
	cols []string
	key  string // the conflict target of an upsert
	// fixed are the columns no event changes after the row's first: an
	// upsert leaves them out, so the indexes on them are not rewritten.
	fixed []string
}

var (
	orderViewsTable = table{"order_views", []string{"order_id", "customer_id", "currency", "total", "lines", "state", "revision", "placed_at", "updated_at",
		"payment_status", "amount_due", "paid", "refunded", "provider", "payment_id", "payment_updated_at",
		"shipping_status", "carrier", "tracking_number", "shipped_at", "delivered_at", "shipping_updated_at",
		"state_since", "payment_since", "shipping_since"}, "order_id",
		[]string{"customer_id", "currency", "total", "lines", "placed_at", "amount_due"}}
	refundsTable = table{"refunds", []string{"order_id", "refund_id", "currency", "amount", "reason", "automatic", "status", "requested_at", "settled_at", "updated_at"}, "order_id, refund_id",
		[]string{"currency", "amount", "reason", "automatic", "requested_at"}}
)

// args are the row's values in the order of orderViewsTable.cols.
func (o *orderView) args() []any {
	r, p, s := &o.order, &o.payment, &o.shipment
	return []any{o.id, r.customerID, r.currency, r.total, r.lines, r.state, r.revision, r.placedAt, r.updatedAt,
		p.status, p.amountDue, p.paid, p.refunded, p.provider, p.paymentID, p.updatedAt,
		s.status, s.carrier, s.trackingNumber, s.shippedAt, s.deliveredAt, s.updatedAt,
		r.stateSince, p.since, s.since}
}

func (r *refundRow) args() []any {
	return []any{r.orderID, r.refundID, r.currency, r.amount, r.reason, r.automatic, r.status, r.requestedAt, r.settledAt, r.updatedAt}
}

func newBatch(ctx context.Context, tx *sql.Tx, stmts *statements) *batch {
	return &batch{ctx: ctx, tx: tx, stmts: stmts, orders: map[string]*orderView{}, refunds: map[refundKey]*refundRow{}}
}

// applyAll applies changes in order: it loads the stored rows they touch,
// changes them in memory and writes each changed row once.
func (b *batch) applyAll(changes []change) error {
	if err := b.load(changes); err != nil {
		return err
	}
	for _, c := range changes {
		if c.err != nil {
			return badEvent(c.err)
		}
		if c.orderID == "" {
			continue
		}
		if err := b.apply(c); err != nil {
			return err
		}
	}
	return b.flush()
}

// load reads the stored rows of the orders and refunds the changes touch
// and that the batch does not create itself, a few multi-row queries for
// the whole batch.
func (b *batch) load(changes []change) error {
	seen := map[string]bool{}
	requested := map[refundKey]bool{}
	refundsOf := map[string]bool{}
	var orderIDs, refundOrderIDs []string
	for _, c := range changes {
		if c.orderID == "" || c.err != nil {
			continue
		}
		if !seen[c.orderID] {
			seen[c.orderID] = true
			if !c.placesOrder() {
				orderIDs = append(orderIDs, c.orderID)
			}
		}
		if d, ok := c.data.(domain.RefundRequested); ok {
			requested[refundKey{c.orderID, d.RefundID}] = true
		}
		if id, ok := c.settlesRefund(); ok && !requested[refundKey{c.orderID, id}] && !refundsOf[c.orderID] {
			refundsOf[c.orderID] = true
			refundOrderIDs = append(refundOrderIDs, c.orderID)
		}
	}
	if err := b.loadOrders(orderIDs); err != nil {
		return err
	}
	return b.loadRefunds(refundOrderIDs)
}

const loadOrdersSQL = `SELECT order_id, customer_id, currency, total, lines, state, revision, placed_at, updated_at,
	payment_status, amount_due, paid, refunded, provider, payment_id, payment_updated_at,
	shipping_status, carrier, tracking_number, shipped_at, delivered_at, shipping_updated_at,
	state_since, payment_since, shipping_since
	FROM order_views WHERE order_id IN `

// loadOrders reads the stored rows of orders ids, from the cache when it
// holds them; an order without rows is remembered as not placed.
func (b *batch) loadOrders(ids []string) error {
	missing := ids[:0:0]
	for _, id := range ids {
		if v, ok := b.cache.get(id); ok {
			o := &v
			b.orders[id] = o
			b.touched = append(b.touched, o)
			continue
		}
		b.orders[id] = &orderView{id: id}
		missing = append(missing, id)
	}
	ids = missing
	return eachChunk(len(ids), func(lo, hi int) error {
		return b.query(b.stmts.text(shape{"load order_views", hi - lo, false}, func() string { return loadOrdersSQL + marks(hi-lo) }), stringArgs(ids[lo:hi]), func(rows *sql.Rows) error {
			o := &orderView{exists: true}
			r, p, s := &o.order, &o.payment, &o.shipment
			if err := rows.Scan(&o.id, &r.customerID, &r.currency, &r.total, &r.lines, &r.state, &r.revision, &r.placedAt, &r.updatedAt,
				&p.status, &p.amountDue, &p.paid, &p.refunded, &p.provider, &p.paymentID, &p.updatedAt,
				&s.status, &s.carrier, &s.trackingNumber, &s.shippedAt, &s.deliveredAt, &s.updatedAt,
				&r.stateSince, &p.since, &s.since); err != nil {
				return err
			}
			b.orders[o.id] = o
			b.touched = append(b.touched, o)
			return nil
		})
	})
}

const loadRefundsSQL = `SELECT order_id, refund_id, currency, amount, reason, automatic, status, requested_at, settled_at, updated_at
	FROM refunds WHERE order_id IN `

// loadRefunds reads the stored refunds of orders ids.
func (b *batch) loadRefunds(ids []string) error {
	return eachChunk(len(ids), func(lo, hi int) error {
		return b.query(b.stmts.text(shape{"load refunds", hi - lo, false}, func() string { return loadRefundsSQL + marks(hi-lo) }), stringArgs(ids[lo:hi]), func(rows *sql.Rows) error {
			r := &refundRow{exists: true}
			if err := rows.Scan(&r.orderID, &r.refundID, &r.currency, &r.amount, &r.reason, &r.automatic, &r.status,
				&r.requestedAt, &r.settledAt, &r.updatedAt); err != nil {
				return err
			}
			k := refundKey{r.orderID, r.refundID}
			if b.refunds[k] == nil {
				b.refunds[k] = r
				b.touchedRefunds = append(b.touchedRefunds, r)
			}
			return nil
		})
	})
}

// rowCacheSize bounds the order rows a rowCache holds: enough for the
// orders in progress under live traffic, whose next events follow within
// moments, at a few megabytes.
const rowCacheSize = 8192

// rowCache holds the order rows a runner's committed batches wrote, as
// they are stored, so that the next batches touching those orders need
// not read them back. It is only right while nothing else writes the
// rows: the runner resets it whenever it (re)starts from the stored
// checkpoint (another runner may have moved it, see advance) and when a
// commit fails (it may have happened). A failed batch leaves it as it
// was: the batch rolled back, and it changed copies.
type rowCache struct {
	m map[string]orderView
}

func (c *rowCache) reset() { c.m = nil }

// get returns a copy of order id's stored row, if the cache holds it.
func (c *rowCache) get(id string) (orderView, bool) {
	if c == nil {
		return orderView{}, false
	}
	v, ok := c.m[id]
	return v, ok
}

// keep records rows, just committed, as stored. Past rowCacheSize, an
// arbitrary row makes room for each new one.
func (c *rowCache) keep(rows []*orderView) {
	if c.m == nil {
		c.m = make(map[string]orderView, min(len(rows), rowCacheSize))
	}
	for _, o := range rows {
		if !o.exists {
			continue
		}
		if _, ok := c.m[o.id]; !ok && len(c.m) >= rowCacheSize {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
		v := *o
		v.isNew = false
		c.m[o.id] = v
	}
}

// flush writes every row the batch changed: multi-row inserts for the
// rows it created, multi-row upserts for the stored rows it changed.
func (b *batch) flush() error {
	orders, orderUpdates := split(b.touched)
	refunds, refundUpdates := split(b.touchedRefunds)
	for _, w := range []struct {
		t      table
		rows   [][]any
		upsert bool
	}{{orderViewsTable, orders, false}, {orderViewsTable, orderUpdates, true}, {refundsTable, refunds, false}, {refundsTable, refundUpdates, true}} {
		if !w.upsert && b.bulkInsert != nil && len(w.rows) > 0 {
			if err := b.bulkInsert(w.t, w.rows); err != nil {
				return fmt.Errorf("write %s: %w", w.t.name, err)
			}
			continue
		}
		if err := b.write(w.t, w.rows, w.upsert); err != nil {
			return err
		}
	}
	return nil
}

// batchRow is a row a batch may write.
type batchRow interface {
	// written says whether the batch inserts the row (created it) or
	// upserts it (changed a stored row).
	written() (insert, update bool)
	args() []any
}

func (o *orderView) written() (bool, bool) { return o.isNew, o.exists && !o.isNew }
func (r *refundRow) written() (bool, bool) { return r.isNew, r.dirty && !r.isNew }

// split returns the values of the rows to insert and of those to upsert.
func split[R batchRow](rows []R) (inserts, updates [][]any) {
	for _, r := range rows {
		switch ins, upd := r.written(); {
		case ins:
			inserts = append(inserts, r.args())
		case upd:
			updates = append(updates, r.args())
		}
	}
	return inserts, updates
}

// write inserts rows into t; with upsert, rows that exist are replaced.
func (b *batch) write(t table, rows [][]any, upsert bool) error {
	return eachChunk(len(rows), func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*len(t.cols))
		for _, r := range rows[lo:hi] {
			args = append(args, r...)
		}
		query := b.stmts.text(shape{t.name, hi - lo, upsert}, func() string { return t.insertSQL(b.stmts.insert, hi-lo, upsert) })
		if err := b.exec(query, args); err != nil {
			return fmt.Errorf("write %s: %w", t.name, err)
		}
		return nil
	})
}

// sqliteBatchInsert is how a batch's multi-row INSERTs begin in SQLite. By
// default a statement that fails on a constraint is undone alone, so SQLite
// copies every page the statement changes into a statement journal first
// (a tenth of a rebuild's CPU). A batch never continues after a failed
// statement: its transaction is rolled back whole. OR ROLLBACK says just
// that (a failing statement ends the transaction), so SQLite keeps no
// statement journal; the error returned is the same constraint error.
const sqliteBatchInsert = "INSERT OR ROLLBACK INTO"

// insertSQL is a multi-row INSERT of n rows, or an upsert, beginning with
// verb (the dialect's: "INSERT INTO", or sqliteBatchInsert).
func (t table) insertSQL(verb string, n int, upsert bool) string {
	var sb strings.Builder
	sb.WriteString(verb + " " + t.name + " (" + strings.Join(t.cols, ", ") + ") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
	}
	if upsert {
		sb.WriteString(" ON CONFLICT (" + t.key + ") DO UPDATE SET ")
		first := true
		for _, c := range t.cols {
			if strings.Contains(", "+t.key+", ", ", "+c+", ") || slices.Contains(t.fixed, c) {
				continue
			}
			if !first {
				sb.WriteString(", ")
			}
			first = false
			sb.WriteString(c + " = excluded." + c)
		}
	}
	return sb.String()
}

// maxChunk bounds the rows of one statement. Above exactChunk, chunks are
// powers of two, so a handful of statement shapes serve every batch and
// stay prepared; up to exactChunk rows (a live batch, which holds what
// arrived since the last commit) go in one statement of exactly that
// many: one statement a batch instead of one per set bit of its count,
// for at most exactChunk more prepared shapes per statement kind.
const (
	maxChunk   = 256
	exactChunk = 16
)

// eachChunk calls f for consecutive ranges [lo, hi) covering n items: one
// range when n is at most exactChunk, otherwise ranges each a power of two
// long and at most maxChunk.
func eachChunk(n int, f func(lo, hi int) error) error {
	if n > 0 && n <= exactChunk {
		return f(0, n)
	}
	for lo := 0; lo < n; {
		size := maxChunk
		for size > n-lo {
			size /= 2
		}
		if err := f(lo, lo+size); err != nil {
			return err
		}
		lo += size
	}
	return nil
}

// marks is "(?, ?, …)" for an IN list of n values.
func marks(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

func stringArgs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (b *batch) exec(query string, args []any) error {
	_, err := b.execResult(query, args)
	return err
}

// execResult runs query, prepared once per store (see statements), in
// the batch's transaction.
func (b *batch) execResult(query string, args []any) (sql.Result, error) {
	stmt, err := b.stmts.get(b.ctx, query)
	if err != nil {
		return nil, err
	}
	return b.tx.StmtContext(b.ctx, stmt).ExecContext(b.ctx, args...)
}

func (b *batch) query(query string, args []any, scan func(*sql.Rows) error) error {
	stmt, err := b.stmts.get(b.ctx, query)
	if err != nil {
		return err
	}
	rows, err := b.tx.StmtContext(b.ctx, stmt).QueryContext(b.ctx, args...)
	if err != nil {
		return fmt.Errorf("read model load: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// statements caches prepared statements: parsing the SQL of every write
// for every batch would cost more than running it. It also keeps the text
// of the batch's generated statements by shape, so a batch does not build
// a multi-row statement's text only to find it prepared.
type statements struct {
	db     *sql.DB
	insert string // the dialect's batchInsert verb
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	texts  map[shape]string
}

// shape names a generated statement: what it does (a table written, or
// a load), for how many rows, and whether it upserts.
type shape struct {
	what   string
	n      int
	upsert bool
}

// text returns the statement of shape k, built once by build.
func (s *statements) text(k shape, build func() string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.texts[k]; ok {
		return q
	}
	q := build()
	if s.texts == nil {
		s.texts = map[shape]string{}
	}
	s.texts[k] = q
	return q
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
