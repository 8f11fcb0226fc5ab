package projections_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/projections"
)

// exec runs statements on one generation of the target's read models;
// {t} in a statement stands for the generation's table prefix (its schema
// on PostgreSQL).
func (tg target) exec(tb testing.TB, generation string, stmts ...string) {
	tb.Helper()
	driver, dsn, prefix := "pgx", tg.dsn, generation+"."
	if tg.dsn == "" {
		driver, dsn, prefix = "sqlite", filepath.Join(tg.dir, generation), ""
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.Exec(strings.ReplaceAll(stmt, "{t}", prefix)); err != nil {
			tb.Fatalf("%s: %v", stmt, err)
		}
	}
}

// schemaV1 turns read models of the current schema back into schema
// version 1 as that version wrote them: no readmodel_version table, no
// status-since columns, no "cancelled" statuses, no last_event; and an
// error its projection recorded for a full disk.
var schemaV1 = []string{
	`DROP TABLE {t}readmodel_version`,
	`DROP INDEX {t}order_views_payment_since`,
	`DROP INDEX {t}order_views_shipping_since`,
	`DROP INDEX {t}order_views_placed`,
	`DROP INDEX {t}order_views_state`,
	`DROP INDEX {t}order_views_customer`,
	`ALTER TABLE {t}order_views DROP COLUMN state_since`,
	`ALTER TABLE {t}order_views DROP COLUMN payment_since`,
	`ALTER TABLE {t}order_views DROP COLUMN shipping_since`,
	`UPDATE {t}order_views SET payment_status = 'unpaid' WHERE payment_status = 'cancelled'`,
	`UPDATE {t}order_views SET shipping_status = 'not_shipped' WHERE shipping_status = 'cancelled' AND shipped_at = ''`,
	`UPDATE {t}order_views SET shipping_status = 'shipped' WHERE shipping_status = 'cancelled' AND shipped_at <> ''`,
	`CREATE INDEX order_views_payment ON {t}order_views (payment_status, payment_updated_at)`,
	`CREATE INDEX order_views_shipping ON {t}order_views (shipping_status, shipping_updated_at)`,
	`ALTER TABLE {t}projection_state DROP COLUMN last_event`,
	`UPDATE {t}projection_state SET error = 'commit read-model batch: database or disk is full (13)'`,
}

// TestSchemaV1UpgradedAndRebuilt: read models of schema version 1 are
// upgraded in place when opened — they answer at once, with the new
// statuses, and their projection runs again despite the error version 1
// recorded for a passing failure — and a rebuild then replaces them with
// rows computed from the events, identical to those of a fresh projection.
func TestSchemaV1UpgradedAndRebuilt(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		now := time.Now()
		var ids []string
		var head uint64
		for _, history := range stuckHistories {
			id := uuid.NewString()
			ids = append(ids, id)
			head = appendHistory(t, es, id, now, history(id)...)
		}
		m := tg.openManager(t, es)
		live, r := m.Current()
		if err := r.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		fresh := dump(t, live, ids)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		first, _ := tg.generations()
		tg.exec(t, first, schemaV1...)

		m = tg.openManager(t, es)
		defer m.Close()
		upgraded, r := m.Current()
		if !m.NeedsRebuild() {
			t.Fatal("read models upgraded from schema version 1 do not ask for a rebuild")
		}
		if err := r.WaitCaughtUp(ctx); err != nil {
			t.Fatalf("the upgraded read models' projection: %v", err)
		}
		for _, id := range ids {
			o, err := upgraded.GetOrder(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if o.StateSince.IsZero() || o.Payment.StatusSince.IsZero() || o.Shipping.StatusSince.IsZero() {
				t.Errorf("upgraded order %s has no status times: %+v", id, o)
			}
		}
		if stats := dump(t, upgraded, ids)["stats"]; stats != fresh["stats"] {
			t.Errorf("upgraded stats %s, want %s", stats, fresh["stats"])
		}

		started, err := m.StartStaleRebuild()
		if err != nil || !started {
			t.Fatalf("StartStaleRebuild: %v, %v", started, err)
		}
		for p, _ := m.RebuildStatus(); p.Running; p, _ = m.RebuildStatus() {
			if ctx.Err() != nil {
				t.Fatalf("the rebuild did not finish: %+v", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if p, _ := m.RebuildStatus(); !p.Done {
			t.Fatalf("the rebuild failed: %+v", p)
		}
		rebuilt, _ := m.Current()
		if m.NeedsRebuild() || rebuilt == upgraded {
			t.Fatal("the rebuild did not replace the upgraded read models")
		}
		after := dump(t, rebuilt, ids)
		for k := range fresh {
			if fresh[k] != after[k] {
				t.Errorf("%s differs from a fresh projection after the rebuild:\nfresh:   %s\nrebuilt: %s", k, fresh[k], after[k])
			}
		}
	})
}

// TestNewerSchemaRefused: read models written by a newer ordo are not
// opened (this one would misread them).
func TestNewerSchemaRefused(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		m := tg.openManager(t, es)
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		first, _ := tg.generations()
		tg.exec(t, first, `UPDATE {t}readmodel_version SET version = 99`)
		_, err := projections.OpenManagerDSN(ctx, tg.dsn, tg.dir, serve.ProjectionSource{Store: es}, nil)
		if err == nil || !strings.Contains(err.Error(), "schema version 99") {
			t.Fatalf("opening read models of schema version 99: %v, want a refusal naming it", err)
		}
	})
}
