// Package projectionstest supports tests of the read models, as
// net/http/httptest does for HTTP: a fresh PostgreSQL database per test,
// and a dump of every row a read model serves, for comparing two of them
// (a live one and its rebuild).
package projectionstest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/ordo-dev/ordo/projections"
)

// PostgresEnv names the PostgreSQL server the tests' PostgreSQL pass uses.
const PostgresEnv = "ORDO_TEST_POSTGRES_DSN"

// FreshPostgres creates a database of its own for one test on the server
// of ORDO_TEST_POSTGRES_DSN, drops it at cleanup, and returns its DSN. The
// test is skipped when the variable is unset.
func FreshPostgres(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		tb.Skip("PostgreSQL pass skipped: set " + PostgresEnv + " to a postgres:// DSN whose role may create databases, e.g. export " + PostgresEnv + "=$(.ci/postgres.sh)")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("%s: %v", PostgresEnv, err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	name := "ordo_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		tb.Fatalf("create a test database on %s: %v", u.Host, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
		admin.Close()
	})
	u.Path = "/" + name
	return u.String()
}

// Dump reads every row the read models serve, through their query API:
// the given orders, every page of the order, payment, shipment and refund lists,
// and the stats, each as JSON under a name.
func Dump(ctx context.Context, store *projections.Store, orderIDs []string) (map[string]string, error) {
	out := map[string]string{}
	add := func(name string, v any) {
		b, _ := json.Marshal(v)
		out[name] = string(b)
	}
	for _, id := range orderIDs {
		o, err := store.GetOrder(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("order %s: %w", id, err)
		}
		add("order "+id, o)
	}
	if err := dumpPages(ctx, "orders", store.ListOrders, add); err != nil {
		return nil, err
	}
	if err := dumpPages(ctx, "payments", store.ListPayments, add); err != nil {
		return nil, err
	}
	if err := dumpPages(ctx, "shipments", store.ListShipments, add); err != nil {
		return nil, err
	}
	if err := dumpPages(ctx, "refunds", store.ListRefunds, add); err != nil {
		return nil, err
	}
	st, err := store.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	add("stats", st)
	return out, nil
}

func dumpPages[T any](ctx context.Context, name string, list func(context.Context, projections.ListQuery) (projections.Page[T], error), add func(string, any)) error {
	q := projections.ListQuery{Limit: 500}
	for page := 0; ; page++ {
		p, err := list(ctx, q)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		add(fmt.Sprintf("%s page %d", name, page), p.Items)
		if p.NextCursor == "" {
			return nil
		}
		q.Cursor = p.NextCursor
	}
}
