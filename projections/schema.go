package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// schemaVersion is the layout of the read models this code reads and
// writes, recorded in readmodel_version:
//
//	1  order_views, the layout before readmodel_version existed
//	2  state_since, payment_since and shipping_since (when the order entered
//	   its state, its payment and shipping status); the payment and shipping
//	   status "cancelled"; projection_state.last_event
//
// (Read models older than order_views, with separate orders, payments and
// shipments tables, are dropped and projected again; see dropOldSchema.)
const schemaVersion = 2

// schema is the read-model schema, in types both SQLite and PostgreSQL
// know. Amounts are integer minor units (BIGINT: 64 bits on both); times
// are UTC timestamps with nine fractional digits (timeLayout), which sort
// correctly as text.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS readmodel_version (
		singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
		version BIGINT NOT NULL,
		rebuild_required BOOLEAN NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS projection_state (
		name TEXT PRIMARY KEY,
		position BIGINT NOT NULL DEFAULT 0,
		events BIGINT NOT NULL DEFAULT 0,
		updated_at TEXT NOT NULL DEFAULT '',
		error TEXT NOT NULL DEFAULT '',
		last_event BIGINT NOT NULL DEFAULT 0
	)`,
	// One wide row per order: its summary, payment and shipping status
	// change in the same events, so a batch reads and writes each order
	// once instead of once per table.
	`CREATE TABLE IF NOT EXISTS order_views (
		order_id TEXT PRIMARY KEY,
		customer_id TEXT NOT NULL,
		currency TEXT NOT NULL,
		total BIGINT NOT NULL,
		lines TEXT NOT NULL,
		state TEXT NOT NULL,
		revision BIGINT NOT NULL,
		placed_at TEXT NOT NULL,
		updated_at TEXT NOT NULL,
		payment_status TEXT NOT NULL,
		amount_due BIGINT NOT NULL,
		paid BIGINT NOT NULL,
		refunded BIGINT NOT NULL,
		provider TEXT NOT NULL,
		payment_id TEXT NOT NULL,
		payment_updated_at TEXT NOT NULL,
		shipping_status TEXT NOT NULL,
		carrier TEXT NOT NULL,
		tracking_number TEXT NOT NULL,
		shipped_at TEXT NOT NULL,
		delivered_at TEXT NOT NULL,
		shipping_updated_at TEXT NOT NULL,
		state_since TEXT NOT NULL DEFAULT '',
		payment_since TEXT NOT NULL DEFAULT '',
		shipping_since TEXT NOT NULL DEFAULT ''
	) WITHOUT ROWID`,
	// The lists: payments and shipments by status and time in it, orders
	// newest first (all, by state, by customer).
	`CREATE INDEX IF NOT EXISTS order_views_payment_since ON order_views (payment_status, payment_since, order_id)`,
	`CREATE INDEX IF NOT EXISTS order_views_shipping_since ON order_views (shipping_status, shipping_since, order_id)`,
	`CREATE INDEX IF NOT EXISTS order_views_placed ON order_views (placed_at, order_id)`,
	`CREATE INDEX IF NOT EXISTS order_views_state ON order_views (state, placed_at, order_id)`,
	`CREATE INDEX IF NOT EXISTS order_views_customer ON order_views (customer_id, placed_at, order_id)`,
	`CREATE TABLE IF NOT EXISTS refunds (
		order_id TEXT NOT NULL,
		refund_id TEXT NOT NULL,
		currency TEXT NOT NULL,
		amount BIGINT NOT NULL,
		reason TEXT NOT NULL,
		automatic BOOLEAN NOT NULL,
		status TEXT NOT NULL,
		requested_at TEXT NOT NULL,
		settled_at TEXT NOT NULL DEFAULT '',
		updated_at TEXT NOT NULL,
		PRIMARY KEY (order_id, refund_id)
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS refunds_status ON refunds (status, updated_at)`,
}

// upgradeFrom1 brings read models of schema version 1 to version 2 in
// place, so that they keep answering while the Manager rebuilds them: the
// new columns start from the closest old ones (a status's "since" from its
// last change), and the orders that ended unpaid or unshipped get the new
// "cancelled" statuses, which version 1's rows determine exactly. The
// times are approximations, so the version is recorded as needing a
// rebuild; a rebuild computes every column from the events. Errors
// recorded by version 1 are cleared: it recorded passing failures (a full
// disk) as if they were permanent; a bad event stops the projection again
// when it is reached.
var upgradeFrom1 = []string{
	`ALTER TABLE order_views ADD COLUMN state_since TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE order_views ADD COLUMN payment_since TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE order_views ADD COLUMN shipping_since TEXT NOT NULL DEFAULT ''`,
	`UPDATE order_views SET state_since = updated_at, payment_since = payment_updated_at, shipping_since = shipping_updated_at`,
	`UPDATE order_views SET payment_status = 'cancelled' WHERE state = 'cancelled' AND payment_status IN ('unpaid', 'failed')`,
	`UPDATE order_views SET shipping_status = 'cancelled' WHERE state IN ('cancelled', 'refunded') AND shipping_status IN ('not_shipped', 'shipped')`,
	`DROP INDEX IF EXISTS order_views_payment`,
	`DROP INDEX IF EXISTS order_views_shipping`,
	// The last applied event is not known; the checkpoint is the closest
	// bound above it, which can only make the head check stricter.
	`ALTER TABLE projection_state ADD COLUMN last_event BIGINT NOT NULL DEFAULT 0`,
	`UPDATE projection_state SET last_event = position, error = ''`,
}

// migrate brings the database to schemaVersion: it creates the schema in
// an empty one, upgrades an older one, and refuses a newer one.
func (s *Store) migrate(ctx context.Context) error {
	if err := s.dropOldSchema(ctx); err != nil {
		return err
	}
	v, err := s.storedVersion(ctx)
	if err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("the read models are of schema version %d, newer than this ordo's %d: run the newer ordo, or delete them (ordo replay --all --restart rebuilds them)", v, schemaVersion)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate the read-model schema: %w", err)
	}
	defer tx.Rollback()
	if v == 1 {
		for _, stmt := range upgradeFrom1 {
			if _, err := tx.ExecContext(ctx, s.dialect.ddl(stmt)); err != nil {
				return fmt.Errorf("upgrade the read models from schema version 1: %w", err)
			}
		}
	}
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, s.dialect.ddl(stmt)); err != nil {
			return fmt.Errorf("create read-model schema: %w", err)
		}
	}
	if v < schemaVersion {
		// A fresh database holds nothing to rebuild; an upgraded one does.
		if _, err := tx.ExecContext(ctx, `INSERT INTO readmodel_version (singleton, version, rebuild_required) VALUES (TRUE, ?, ?)
			ON CONFLICT (singleton) DO UPDATE SET version = excluded.version, rebuild_required = excluded.rebuild_required`,
			schemaVersion, v > 0); err != nil {
			return fmt.Errorf("record the read-model schema version: %w", err)
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT rebuild_required FROM readmodel_version`).Scan(&s.stale); err != nil {
		return fmt.Errorf("read the read-model schema version: %w", err)
	}
	return tx.Commit()
}

// storedVersion is the schema version of the read models in the database:
// 0 when there are none.
func (s *Store) storedVersion(ctx context.Context) (int, error) {
	has := func(table string) (bool, error) {
		var n int
		if err := s.db.QueryRowContext(ctx, s.dialect.tableExists, table).Scan(&n); err != nil {
			return false, fmt.Errorf("inspect read-model schema: %w", err)
		}
		return n > 0, nil
	}
	if ok, err := has("readmodel_version"); err != nil || ok {
		if err != nil {
			return 0, err
		}
		var v int
		err := s.db.QueryRowContext(ctx, `SELECT version FROM readmodel_version`).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, errors.New("the read models' readmodel_version table is empty: delete the read models to have them rebuilt")
		}
		return v, err
	}
	if ok, err := has("order_views"); err != nil || ok {
		return 1, err
	}
	return 0, nil
}

// oldTables are the read models' tables before order_views joined the
// summary, payment and shipment rows into one.
var oldTables = []string{"orders", "payments", "shipments", "refunds", "projection_state"}

// dropOldSchema drops the tables of the read models' schema before
// order_views, if they are there, checkpoint included, so the runner
// projects the whole history again into the new tables: read models are
// rebuildable, so a schema change needs no data migration.
func (s *Store) dropOldSchema(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, s.dialect.tableExists, "payments").Scan(&n); err != nil {
		return fmt.Errorf("inspect read-model schema: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range oldTables {
		if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
			return fmt.Errorf("drop old read-model table %s: %w", t, err)
		}
	}
	return tx.Commit()
}
