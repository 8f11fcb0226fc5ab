package projections

import (
	"context"
	"path/filepath"
	"testing"
)

// TestBatchInsertFailureUndoesTheBatch: a batch's multi-row INSERT that
// fails on a constraint (here a duplicate key) fails the batch, and nothing
// the batch wrote before it stays, as when SQLite undid the statement alone
// and the runner rolled the transaction back; the store then takes the
// next batch, and the same INSERT as an upsert updates the stored row.
func TestBatchInsertFailureUndoesTheBatch(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "rm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	row := func(order, status string) []any {
		return []any{order, "r1", "EUR", int64(100), "why", false, status, "2026-01-01T00:00:00Z", "", "2026-01-01T00:00:00Z"}
	}
	count := func() (n int) {
		t.Helper()
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM refunds`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	inBatch := func(write func(b *batch) error) error {
		tx, _, release, err := s.begin(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		defer tx.Rollback()
		if err := write(newBatch(ctx, tx, s.stmts)); err != nil {
			return err
		}
		return tx.Commit()
	}

	err = inBatch(func(b *batch) error {
		if err := b.write(refundsTable, [][]any{row("o1", "requested")}, false); err != nil {
			t.Fatalf("first INSERT of the batch: %v", err)
		}
		return b.write(refundsTable, [][]any{row("o2", "requested"), row("o1", "requested")}, false)
	})
	if err == nil {
		t.Fatal("a batch inserting a key twice succeeded, want a constraint error")
	}
	if n := count(); n != 0 {
		t.Fatalf("after the failed batch: %d rows, want 0", n)
	}
	if err := inBatch(func(b *batch) error { return b.write(refundsTable, [][]any{row("o1", "requested")}, false) }); err != nil {
		t.Fatalf("the batch after a failed one: %v", err)
	}
	if err := inBatch(func(b *batch) error { return b.write(refundsTable, [][]any{row("o1", "completed")}, true) }); err != nil {
		t.Fatalf("upsert: %v", err)
	}
	var status string
	if err := s.db.QueryRowContext(ctx, `SELECT status FROM refunds WHERE order_id = 'o1'`).Scan(&status); err != nil || status != "completed" || count() != 1 {
		t.Fatalf("after the upsert: status %q (%v), %d rows; want completed, 1 row", status, err, count())
	}
}
