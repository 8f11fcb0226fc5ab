package projections_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// TestTwoRunnersApplyOnce runs two runners on one read-model database —
// one following the subscription, one loading the history in bulk as a
// rebuild does and then following — while orders are appended: the
// checkpoint fences their batches, so the read models end equal to one
// application of the history, with no payment or refund counted twice.
func TestTwoRunnersApplyOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		const rounds = 30
		// Events before both start: each of them has batches to race for.
		var ids []string
		for range rounds / 2 {
			got, _ := appendCases(t, es)
			ids = append(ids, got...)
		}
		a, b := tg.openStore(t), tg.openStore(t)
		ra, _ := runRunner(t, a, es)
		rb := projections.NewRunner(b, serve.ProjectionSource{Store: es}, nil)
		bctx, stopB := context.WithCancel(ctx)
		bdone := make(chan error, 1)
		go func() {
			if err := projections.Load(bctx, rb, serve.ProjectionSource{Store: es}); err != nil && !errors.Is(err, context.Canceled) {
				t.Logf("bulk load ended early (the other runner got ahead): %v", err)
			}
			bdone <- rb.Run(bctx)
		}()
		var head uint64
		for range rounds - rounds/2 {
			var got []string
			got, head = appendCases(t, es)
			ids = append(ids, got...)
		}
		for _, r := range []*projections.Runner{ra, rb} {
			if err := r.WaitFor(ctx, head); err != nil {
				t.Fatal(err)
			}
		}
		stopB()
		if err := <-bdone; err != nil {
			t.Fatalf("bulk runner: %v", err)
		}
		for i := 0; i < len(ids); i += len(orderCases) {
			checkCases(t, a, ids[i:i+len(orderCases)])
		}

		// One runner alone over a database of its own is the reference.
		single := target{dir: t.TempDir()}
		if tg.dsn != "" {
			single.dsn = projectionstest.FreshPostgres(t)
		}
		ref := single.openStore(t)
		rr, _ := runRunner(t, ref, es)
		if err := rr.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		if got, want := dump(t, a, ids), dump(t, ref, ids); !reflect.DeepEqual(got, want) {
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s:\n got %s\nwant %s", k, got[k], v)
				}
			}
			t.Fatalf("the read models two runners shared differ from one runner's (%d rows)", len(want))
		}
		applied, err := projections.StoredEvents(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if want := rounds * caseEvents(); applied != want {
			t.Errorf("events applied by the two runners together: %d, want %d", applied, want)
		}
		fenced := ra.Status(ctx).Fenced + rb.Status(ctx).Fenced
		if fenced == 0 {
			t.Errorf("no batch was fenced, though both runners started before the same events")
		}
		t.Logf("batches rolled back by the fence: %d", fenced)
	})
}

// openGated opens the target's read models under gate, as an instance of
// several sharing them does.
func (tg target) openGated(tb testing.TB, es *eventstore.Store, gate projections.Gate) *projections.Manager {
	tb.Helper()
	m, err := projections.OpenManagerConfig(context.Background(), projections.ManagerConfig{
		DSN: tg.dsn, Dir: tg.dir, Source: serve.ProjectionSource{Store: es}, Gate: gate})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// TestSharedReadModelsFollowARebuild: of two managers sharing read models,
// one applying events (its gate open), one on standby (its gate shut),
// the standby runs a rebuild, which swaps in the other generation and
// drops the one in use. The other manager follows the swap: it keeps the
// rebuilt generation current from then on, and the standby's follows it.
func TestSharedReadModelsFollowARebuild(t *testing.T) {
	forEachStore(t, func(t *testing.T, tg target) {
		ctx := waitCtx(t)
		es := openEventStore(t)
		ids, head := appendCases(t, es)
		open := func(ctx context.Context, run func(context.Context) error) error { return run(ctx) }
		shut := func(ctx context.Context, _ func(context.Context) error) error { <-ctx.Done(); return ctx.Err() }
		holder := tg.openGated(t, es, open)
		standby := tg.openGated(t, es, shut)
		for _, m := range []*projections.Manager{holder, standby} {
			if _, r := m.Current(); r.WaitFor(ctx, head) != nil {
				t.Fatalf("the read models did not reach %d: %+v", head, r.Status(ctx))
			}
		}
		if _, r := standby.Current(); !r.Status(ctx).Standby {
			t.Fatalf("the manager whose gate is shut: %+v; want it on standby", r.Status(ctx))
		}
		if err := rebuild(ctx, standby); err != nil {
			t.Fatal(err)
		}
		// Events after the swap reach the rebuilt generation only if the
		// holder applies them there: the standby never applies any.
		later, head2 := appendCases(t, es)
		for _, m := range []*projections.Manager{holder, standby} {
			// The holder notices the swap within about a second; until then
			// its runner is the one of the dropped generation.
			for {
				store, r := m.Current()
				wctx, cancel := context.WithTimeout(ctx, time.Second)
				err := r.WaitFor(wctx, head2)
				cancel()
				if err == nil {
					checkCases(t, store, ids)
					checkCases(t, store, later)
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("after the rebuild: %v (%+v)", err, r.Status(ctx))
				}
			}
		}
		_, second := tg.generations()
		if !tg.generationExists(t, second) {
			t.Errorf("generation %s, where the rebuild went, does not exist", second)
		}
	})
}

// TestManagerClosedTwice: a second Close (a service shut down twice)
// returns instead of waiting for a runner that has stopped already.
func TestManagerClosedTwice(t *testing.T) {
	es := openEventStore(t)
	m := target{dir: t.TempDir()}.openManager(t, es)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the second Close did not return")
	}
}
