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
	// stale: the rows were written under an older schema version and
	// upgraded in place; they serve until a rebuild replaces them.
	stale bool
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
	// insert begins a batch's multi-row INSERT (see batchInsert).
	insert string
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
	insert:      sqliteBatchInsert,
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
	s := &Store{db: db, stmts: &statements{db: db, insert: d.insert}, dialect: d}
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

// NeedsRebuild reports whether the read models were upgraded in place from
// an older schema version: they answer queries, but some of their columns
// are approximations until a rebuild computes them from the events.
func (s *Store) NeedsRebuild() bool { return s.stale }
