package projections_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
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
