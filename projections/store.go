// Package projections builds the read models operations teams query —
// payment, shipping and refund status per order, and an order summary —
// from the event store's $all subscription, and serves them over HTTP.
//
// Every batch of events and the projection's checkpoint commit in one SQL
// transaction, so each event is applied exactly once across restarts. An
// event that cannot be decoded stops the projection with the error visible
// in /v1/projections; it is never skipped.
package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// Store holds the read models in SQL: a SQLite file or a PostgreSQL
// schema. The queries are the same on both; dialect holds what differs.
type Store struct {
	db      *sql.DB
	stmts   *statements
	dialect dialect
}

// dialect is what differs between the databases the read models run on.
// The queries are written once, with ? placeholders, which the PostgreSQL
// connections rewrite (see rebind).
type dialect struct {
	// ddl adapts a statement of schema to the database.
	ddl func(string) string
	// tableExists counts the tables named by its one parameter.
	tableExists string
	// copyRows, if set, inserts rows into t through the connection under a
	// transaction of it, in the database's bulk form.
	copyRows func(ctx context.Context, conn *sql.Conn, t table, rows [][]any) error
}

// begin starts a transaction for a batch. With bulk, on a database that
// has a bulk form of INSERT, it also returns a function that inserts rows
// that way inside the transaction (nil otherwise). release must be called
// once the transaction has ended.
func (s *Store) begin(ctx context.Context, bulk bool) (tx *sql.Tx, bulkInsert func(table, [][]any) error, release func(), err error) {
	if !bulk || s.dialect.copyRows == nil {
		tx, err = s.db.BeginTx(ctx, nil)
		return tx, nil, func() {}, err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if tx, err = conn.BeginTx(ctx, nil); err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	bulkInsert = func(t table, rows [][]any) error { return s.dialect.copyRows(ctx, conn, t, rows) }
	return tx, bulkInsert, func() { conn.Close() }, nil
}

var sqliteDialect = dialect{
	ddl:         func(s string) string { return s },
	tableExists: `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
}

// OpenStore opens the read models named by dsn: a PostgreSQL database for
// postgres://… or postgresql://… (tables in the DSN's search_path, by
// default public), otherwise a SQLite file, given as a path or as
// sqlite:path.
func OpenStore(ctx context.Context, dsn string) (*Store, error) {
	if IsPostgresDSN(dsn) {
		return openPostgres(ctx, dsn, "")
	}
	return OpenSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
}

// OpenSQLite opens (creating if needed) the read models in a SQLite file.
//
// synchronous=NORMAL with WAL syncs at checkpoints, not at every commit: a
// power loss can take back the last few committed batches, never corrupt
// the file, and since the checkpoint position commits with the rows it
// describes, the runner then simply applies those events again. That is
// durable enough for a read model that can be rebuilt from the event store
// at any time. A 64 MiB page cache keeps a batch's pages from spilling
// mid-transaction, temp_store=MEMORY keeps the statement journals of the
// multi-row writes off the disk, and a WAL checkpoint every 16,384 pages
// (64 MiB) instead of 1,000 writes a page that many batches changed back
// to the database once rather than once per batch.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)" +
		"&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(16384)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open read models %s: %w", path, err)
	}
	// SQLite allows one writer; readers use WAL snapshots alongside it.
	db.SetMaxOpenConns(8)
	return newStore(ctx, db, sqliteDialect)
}

// newStore creates the schema in db if needed; db is closed on failure.
func newStore(ctx context.Context, db *sql.DB, d dialect) (*Store, error) {
	s := &Store{db: db, stmts: &statements{db: db}, dialect: d}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.close()
	return s.db.Close()
}

// schema is the read-model schema, in types both SQLite and PostgreSQL
// know. Amounts are integer minor units (BIGINT: 64 bits on both); times
// are RFC 3339 strings in UTC, which sort correctly as text.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS projection_state (
		name TEXT PRIMARY KEY,
		position BIGINT NOT NULL DEFAULT 0,
		events BIGINT NOT NULL DEFAULT 0,
		updated_at TEXT NOT NULL DEFAULT '',
		error TEXT NOT NULL DEFAULT ''
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
		shipping_updated_at TEXT NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS order_views_payment ON order_views (payment_status, payment_updated_at)`,
	`CREATE INDEX IF NOT EXISTS order_views_shipping ON order_views (shipping_status, shipping_updated_at)`,
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

// oldTables are the read models' tables before order_views joined the
// summary, payment and shipment rows into one.
var oldTables = []string{"orders", "payments", "shipments", "refunds"}

func (s *Store) migrate(ctx context.Context) error {
	if err := s.dropOldSchema(ctx); err != nil {
		return err
	}
	for _, stmt := range schema {
		if _, err := s.db.ExecContext(ctx, s.dialect.ddl(stmt)); err != nil {
			return fmt.Errorf("create read-model schema: %w", err)
		}
	}
	return nil
}

// dropOldSchema drops the tables of the read models' previous schema, if
// they are there, and resets the projection's checkpoint in the same
// transaction, so the runner projects the whole history again into the
// new tables: read models are rebuildable, so a schema change needs no
// data migration.
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
	if _, err := tx.ExecContext(ctx, `DELETE FROM projection_state WHERE name = ?`, Name); err != nil {
		return fmt.Errorf("reset projection checkpoint: %w", err)
	}
	return tx.Commit()
}
