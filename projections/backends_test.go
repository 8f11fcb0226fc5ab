package projections_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for the test database admin

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// target is where one test keeps its read models: SQLite files in a
// temporary directory, or a fresh PostgreSQL database of its own.
type target struct {
	dsn string // "" for SQLite
	dir string
}

// forEachStore runs test against SQLite and, when ORDO_TEST_POSTGRES_DSN is
// set, against PostgreSQL: one suite for both read-model stores.
func forEachStore(t *testing.T, test func(t *testing.T, tg target)) {
	t.Run("sqlite", func(t *testing.T) { test(t, target{dir: t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) { test(t, target{dsn: projectionstest.FreshPostgres(t), dir: t.TempDir()}) })
}

// openStore opens the target's read models directly (no generations).
func (tg target) openStore(tb testing.TB) *projections.Store {
	tb.Helper()
	dsn := tg.dsn
	if dsn == "" {
		dsn = filepath.Join(tg.dir, "rm.db")
	}
	s, err := projections.OpenStore(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openManager opens the target's read models with their generations, fed
// by es; Close is the caller's.
func (tg target) openManager(tb testing.TB, es *eventstore.Store) *projections.Manager {
	tb.Helper()
	m, err := projections.OpenManagerDSN(context.Background(), tg.dsn, tg.dir, serve.ProjectionSource{Store: es}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// generations names the target's two read-model generations, in the order
// rebuilds alternate between them.
func (tg target) generations() (first, second string) {
	if tg.dsn == "" {
		return "readmodels.db", "readmodels-rebuild.db"
	}
	return "ordo_a", "ordo_b"
}

// generationExists reports whether a generation's file or schema exists.
func (tg target) generationExists(tb testing.TB, name string) bool {
	tb.Helper()
	if tg.dsn == "" {
		_, err := os.Stat(filepath.Join(tg.dir, name))
		return err == nil
	}
	db, err := sql.Open("pgx", tg.dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, name).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n == 1
}

// openEventStore starts the embedded event store for one test.
func openEventStore(tb testing.TB) *eventstore.Store {
	tb.Helper()
	es, err := eventstore.OpenEmbedded(context.Background(), eventstore.EmbeddedConfig{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { es.Close() })
	return es
}

// appendEvents appends events to an order stream and returns the $all
// position of the last one.
func appendEvents(tb testing.TB, es *eventstore.Store, id string, exp eventstore.Expected, events ...domain.EventData) uint64 {
	tb.Helper()
	meta := domain.EventMeta{CommandID: uuid.NewString(), OccurredAt: time.Now()}
	var evs []eventstore.EventData
	for _, d := range events {
		typ, data, md, err := domain.EncodeEvent(domain.Event{Type: d.EventType(), Data: d, Meta: meta})
		if err != nil {
			tb.Fatal(err)
		}
		evs = append(evs, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md})
	}
	res, err := es.Append(context.Background(), "order-"+id, exp, evs...)
	if err != nil {
		tb.Fatal(err)
	}
	return res.Position
}

// runRunner runs a runner over store until stop is called or the test
// ends; stop returns Run's result.
func runRunner(tb testing.TB, store *projections.Store, es *eventstore.Store) (r *projections.Runner, stop func() error) {
	tb.Helper()
	r = projections.NewRunner(store, serve.ProjectionSource{Store: es}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	tb.Cleanup(func() { stop() })
	return r, stop
}

func waitCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
