package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// generations are the two places a Manager keeps read models in: the one
// serving queries and the one a rebuild fills and then swaps in. SQLite
// keeps each in its own file of the data directory; PostgreSQL in its own
// schema of the database.
type generations interface {
	// current names the generation in use: the last one swapped in, or the
	// first one.
	current(ctx context.Context) (string, error)
	// other names the generation that is not name, where a rebuild goes.
	other(name string) string
	// open opens (creating if needed) a generation's read models.
	open(ctx context.Context, name string) (*Store, error)
	// swap makes name the current generation, atomically and durably.
	swap(ctx context.Context, name string) error
	// drop deletes a generation's read models; it must not be open.
	drop(ctx context.Context, name string) error
	close() error
}

// openGenerations chooses where the read models live: SQLite files in dir
// when dsn is "", a PostgreSQL database for postgres://….
func openGenerations(ctx context.Context, dsn, dir string) (generations, error) {
	switch {
	case dsn == "":
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("read-model directory: %w", err)
		}
		return sqliteFiles{dir: dir}, nil
	case IsPostgresDSN(dsn):
		return openPostgresSchemas(ctx, dsn)
	default:
		scheme := "none"
		if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
			scheme = u.Scheme // never the whole DSN: it may hold a password
		}
		return nil, fmt.Errorf("read-model DSN: want postgres://… (or none for SQLite in the data directory), got scheme %s", scheme)
	}
}

// sqliteFiles keeps the generations in readmodels.db and
// readmodels-rebuild.db; readmodels.current names the one in use.
type sqliteFiles struct{ dir string }

func (f sqliteFiles) current(context.Context) (string, error) {
	if b, err := os.ReadFile(filepath.Join(f.dir, currentFile)); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	return "readmodels.db", nil
}

func (f sqliteFiles) other(name string) string {
	if name == "readmodels-rebuild.db" {
		return "readmodels.db"
	}
	return "readmodels-rebuild.db"
}

func (f sqliteFiles) open(ctx context.Context, name string) (*Store, error) {
	return OpenSQLite(ctx, filepath.Join(f.dir, name))
}

func (f sqliteFiles) swap(_ context.Context, name string) error {
	return writeFileAtomic(filepath.Join(f.dir, currentFile), name)
}

func (f sqliteFiles) drop(_ context.Context, name string) error {
	removeDatabase(filepath.Join(f.dir, name))
	return nil
}

func (sqliteFiles) close() error { return nil }

// The PostgreSQL generations are the schemas ordo_a and ordo_b; the table
// ordo.readmodels_current names the one in use.
const (
	pgGenerationA = "ordo_a"
	pgGenerationB = "ordo_b"
)

var pgPointerSchema = []string{
	`CREATE SCHEMA IF NOT EXISTS ordo`,
	`CREATE TABLE IF NOT EXISTS ordo.readmodels_current (
		singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
		generation TEXT NOT NULL
	)`,
}

// postgresSchemas keeps the generations in two schemas of one database.
type postgresSchemas struct {
	dsn string
	db  *sql.DB // for the pointer table
}

func openPostgresSchemas(ctx context.Context, dsn string) (*postgresSchemas, error) {
	db, err := openPostgresDB(ctx, dsn, "")
	if err != nil {
		return nil, err
	}
	unlock, err := lockSchemas(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	defer unlock()
	for _, stmt := range pgPointerSchema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("create the read-model generation table: %w", err)
		}
	}
	return &postgresSchemas{dsn: dsn, db: db}, nil
}

func (p *postgresSchemas) current(ctx context.Context) (string, error) {
	var name string
	err := p.db.QueryRowContext(ctx, `SELECT generation FROM ordo.readmodels_current`).Scan(&name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return pgGenerationA, nil
	case err != nil:
		return "", fmt.Errorf("read the current read-model generation: %w", err)
	}
	return name, nil
}

func (p *postgresSchemas) other(name string) string {
	if name == pgGenerationB {
		return pgGenerationA
	}
	return pgGenerationB
}

func (p *postgresSchemas) open(ctx context.Context, name string) (*Store, error) {
	return openPostgres(ctx, p.dsn, name)
}

func (p *postgresSchemas) swap(ctx context.Context, name string) error {
	_, err := p.db.ExecContext(ctx, `INSERT INTO ordo.readmodels_current (singleton, generation) VALUES (TRUE, ?)
		ON CONFLICT (singleton) DO UPDATE SET generation = excluded.generation`, name)
	if err != nil {
		return fmt.Errorf("swap in read-model generation %s: %w", name, err)
	}
	return nil
}

func (p *postgresSchemas) drop(ctx context.Context, name string) error {
	if _, err := p.db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop read-model generation %s: %w", name, err)
	}
	return nil
}

func (p *postgresSchemas) close() error { return p.db.Close() }
