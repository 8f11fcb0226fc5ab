package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsPostgresDSN reports whether dsn names a PostgreSQL database
// (postgres://… or postgresql://…).
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// postgresDialect keeps every text column in byte order (collation "C"),
// as SQLite does: the RFC 3339 times and IDs the lists sort and page by
// then compare the same on both databases, whatever the server's locale.
// Its tables are heaps with a primary-key index; SQLite's WITHOUT ROWID
// (rows stored in the primary key's B-tree) has no counterpart.
var postgresDialect = dialect{
	ddl:         strings.NewReplacer(" TEXT ", ` TEXT COLLATE "C" `, ") WITHOUT ROWID", ")").Replace,
	tableExists: `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`,
	copyRows:    copyRows,
	insert:      "INSERT INTO",
}

// copyRows inserts rows into t with COPY, on conn's pgx connection and
// inside the transaction open on it: one round trip and no SQL to parse
// for any number of rows, where multi-row INSERTs take one per 256 rows.
func copyRows(ctx context.Context, conn *sql.Conn, t table, rows [][]any) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(rebindConn)
		if !ok {
			return fmt.Errorf("COPY needs a pgx connection, got a %T", dc)
		}
		n, err := c.Conn.Conn().CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(rows))
		if err == nil && n != int64(len(rows)) {
			err = fmt.Errorf("COPY wrote %d of %d rows", n, len(rows))
		}
		return err
	})
}

// openPostgres opens (creating if needed) the read models in schema of the
// PostgreSQL database at dsn; with schema "" they live in the DSN's
// search_path, which must exist.
func openPostgres(ctx context.Context, dsn, schema string) (*Store, error) {
	db, err := openPostgresDB(ctx, dsn, schema)
	if err != nil {
		return nil, err
	}
	unlock, err := lockSchemas(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	defer unlock()
	if schema != "" {
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			db.Close()
			return nil, fmt.Errorf("create read-model schema %s: %w", schema, err)
		}
	}
	return newStore(ctx, db, postgresDialect)
}

// schemaLockKey names the advisory lock under which the read models'
// schemas, tables and upgrades are created, in every database Ordo uses.
const schemaLockKey = 0x6f72646f // "ordo"

// lockSchemas takes the advisory lock schemaLockKey of db's database, on a
// connection of its own, until unlock. PostgreSQL's CREATE … IF NOT EXISTS
// does not hold against a concurrent one: the second fails on a unique
// index of the catalog. Several instances starting together on one
// database each create the schemas, so they take turns.
func lockSchemas(ctx context.Context, db *sql.DB) (unlock func(), err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock the read-model schema: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, int64(schemaLockKey)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock the read-model schema: %w", err)
	}
	return func() {
		// Closing the connection would release it too, but the pool may
		// keep the connection open.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, int64(schemaLockKey))
		conn.Close()
	}, nil
}

// openPostgresDB connects to dsn through pgx's database/sql driver, with
// schema (if not "") as the search path of every connection.
func openPostgresDB(ctx context.Context, dsn, schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("read-model DSN: %w", err)
	}
	if schema != "" {
		cfg.RuntimeParams["search_path"] = schema
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to the read-model database %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return db, nil
}

// rebind rewrites the ? placeholders the read models' queries are written
// with into PostgreSQL's $1, $2, …, leaving quoted strings and identifiers
// alone, so one copy of every query serves both databases. (The queries do
// not use PostgreSQL's jsonb ? operators.)
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// rebindConnector hands out pgx connections that rebind every query they
// are given. Rewriting at the connection, below database/sql, covers every
// path a query takes (prepared statements re-prepared inside transactions
// included) without a second copy of any query.
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("pgx returned a %T, not a *stdlib.Conn", conn)
	}
	return rebindConn{pc}, nil
}

// rebindConn is a pgx connection whose query entry points rebind; the rest
// (transactions, pings, session reset, argument checks) is pgx's own.
type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}
