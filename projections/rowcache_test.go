package projections

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// cacheFeed is the events of orders n orders going through their lifecycle
// (with a refund for every other one), the orders interleaved, in batches
// of batchLen events.
func cacheFeed(t *testing.T, n, batchLen int) [][]item {
	t.Helper()
	eur := func(a int64) domain.Money { return domain.Money{Amount: a, Currency: "EUR"} }
	var events []StoredEvent
	lives := make([][]domain.EventData, n)
	for i := range lives {
		id := fmt.Sprintf("o%03d", i)
		lives[i] = []domain.EventData{
			domain.OrderPlaced{OrderID: id, CustomerID: "c", Total: eur(1000), Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}},
			domain.StockReserved{},
			domain.PaymentSucceeded{PaymentID: "p", Amount: eur(1000)},
			domain.OrderShipped{Carrier: "c", TrackingNumber: "t"},
		}
		if i%2 == 0 {
			lives[i] = append(lives[i], domain.RefundRequested{RefundID: "r1", Amount: eur(400), Reason: "why"},
				domain.RefundCompleted{RefundID: "r1", Amount: eur(400)})
		} else {
			lives[i] = append(lives[i], domain.OrderDelivered{}, domain.OrderCompleted{})
		}
	}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for step := range lives[0] {
		for i, life := range lives {
			d := life[step]
			at = at.Add(time.Millisecond)
			typ, data, md, err := domain.EncodeEvent(domain.Event{Type: d.EventType(), Data: d, Meta: domain.EventMeta{CommandID: fmt.Sprint(i, step), OccurredAt: at}})
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, StoredEvent{Stream: fmt.Sprintf("order-o%03d", i), Revision: uint64(step),
				Position: uint64(len(events) + 1), Type: typ, Data: data, Metadata: md, Created: at})
		}
	}
	var batches [][]item
	for lo := 0; lo < len(events); lo += batchLen {
		var b []item
		for i := lo; i < min(lo+batchLen, len(events)); i++ {
			b = append(b, eventItem(&events[i]))
		}
		batches = append(batches, b)
	}
	return batches
}

// storedRows reads the order rows of the read models, from the database.
func storedRows(t *testing.T, s *Store) map[string]orderView {
	t.Helper()
	ctx := context.Background()
	var ids []string
	rows, err := s.db.QueryContext(ctx, `SELECT order_id FROM order_views`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	b := newBatch(ctx, tx, s.stmts) // no cache: loads from the database
	if err := b.loadOrders(ids); err != nil {
		t.Fatal(err)
	}
	out := map[string]orderView{}
	for _, o := range b.touched {
		out[o.id] = *o
	}
	return out
}

// TestRowCacheHoldsTheStoredRows: after every batch, each row the runner's
// cache holds is the row stored in the database, and the read models a
// runner writes with the cache are those it writes reading every row from
// the database.
func TestRowCacheHoldsTheStoredRows(t *testing.T) {
	ctx := context.Background()
	open := func() *Store {
		s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "rm.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	for _, batchLen := range []int{1, 5, 13, 64} {
		t.Run(fmt.Sprint("batch=", batchLen), func(t *testing.T) {
			cached, uncached := open(), open()
			rc, ru := NewRunner(cached, nil, nil), NewRunner(uncached, nil, nil)
			hits := 0
			for i, items := range cacheFeed(t, 20, batchLen) {
				for _, it := range items {
					if _, ok := rc.rows.get(it.change.orderID); ok {
						hits++
					}
				}
				if err := rc.applyBatch(ctx, items); err != nil {
					t.Fatalf("batch %d, with the cache: %v", i, err)
				}
				ru.rows.reset()
				if err := ru.applyBatch(ctx, items); err != nil {
					t.Fatalf("batch %d, without: %v", i, err)
				}
				stored := storedRows(t, cached)
				for id, v := range rc.rows.m {
					if !reflect.DeepEqual(v, stored[id]) {
						t.Fatalf("after batch %d, order %s: cached %+v, stored %+v", i, id, v, stored[id])
					}
				}
			}
			if hits == 0 {
				t.Fatal("no batch read a row from the cache; the test proves nothing")
			}
			if got, want := storedRows(t, cached), storedRows(t, uncached); !reflect.DeepEqual(got, want) || len(got) != 20 {
				t.Fatalf("read models with the cache differ from those without (%d and %d orders)", len(got), len(want))
			}
		})
	}
}

// TestRowCacheIsBounded: the cache holds at most rowCacheSize rows, and
// the rows just kept are among them.
func TestRowCacheIsBounded(t *testing.T) {
	var c rowCache
	for i := range rowCacheSize + 100 {
		c.keep([]*orderView{{id: fmt.Sprint(i), exists: true, isNew: true}})
	}
	if len(c.m) != rowCacheSize {
		t.Fatalf("%d rows cached, want %d", len(c.m), rowCacheSize)
	}
	last := fmt.Sprint(rowCacheSize + 99)
	if v, ok := c.get(last); !ok || v.isNew {
		t.Fatalf("the row kept last: %+v, %v; want it cached as stored (isNew false)", v, ok)
	}
	c.reset()
	if _, ok := c.get(last); ok {
		t.Fatal("a reset cache still holds rows")
	}
}
