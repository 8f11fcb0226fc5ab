package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// dumpReadModels reads every row the read models hold, through their query
// API, as comparable JSON.
func dumpReadModels(tb testing.TB, m *projections.Manager, orders []string) map[string]string {
	tb.Helper()
	store, _ := m.Current()
	rows, err := projectionstest.Dump(ctxT(tb), store, orders)
	if err != nil {
		tb.Fatal(err)
	}
	return rows
}

// TestRebuildMatchesLive rebuilds the read models from scratch while the
// live ones serve, first interrupted, then to the end, and compares every
// row with the live read model it replaces.
func TestRebuildMatchesLive(t *testing.T) {
	dir := t.TempDir()
	s := start(t, config(t, dir))
	ctx := ctxT(t)
	var ids []string
	var last uint64
	for i := 0; i < 12; i++ {
		id := paidOrder(t, s)
		ids = append(ids, id)
		switch i % 3 {
		case 0:
			last = must(t)(s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: fmt.Sprint(i)})).Position
		case 1:
			must(t)(s.client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r", Amount: 700, Reason: "x"}))
			last = must(t)(s.client.CompleteRefund(ctx, domain.CompleteRefund{Order: id, RefundID: "r"})).Position
		default:
			last = must(t)(s.client.CancelOrder(ctx, domain.CancelOrder{Order: id, Reason: "changed mind"})).Position
		}
	}
	m := s.svc.ReadModels()
	_, live := m.Current()
	if err := live.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	before := dumpReadModels(t, m, ids)

	// Interrupted: the live read models are untouched.
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	err := m.Rebuild(short, projections.RebuildOptions{})
	cancel()
	if err == nil {
		t.Log("the rebuild finished within a millisecond; the interruption was not exercised")
	}
	if _, still := m.Current(); err != nil && still != live {
		t.Fatal("an interrupted rebuild replaced the live read models")
	}
	// Resumed to the end and swapped in.
	if err := m.Rebuild(ctx, projections.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, now := m.Current(); now == live {
		t.Fatal("the rebuild did not swap in new read models")
	}
	after := dumpReadModels(t, m, ids)
	if !reflect.DeepEqual(before, after) {
		for k := range before {
			if before[k] != after[k] {
				t.Errorf("%s differs after the rebuild:\nlive:    %s\nrebuilt: %s", k, before[k], after[k])
			}
		}
	}
	cur, err := os.ReadFile(filepath.Join(dir, "readmodels.current"))
	if err != nil || strings.TrimSpace(string(cur)) != "readmodels-rebuild.db" {
		t.Fatalf("readmodels.current = %q, %v", cur, err)
	}
	// The swapped-in read models keep following new commands.
	id := paidOrder(t, s)
	pos := must(t)(s.client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "ups", TrackingNumber: "Z"})).Position
	_, r := m.Current()
	if err := r.WaitFor(ctx, pos); err != nil {
		t.Fatal(err)
	}
	// And a restart opens them.
	s.stop(t)
	s2 := start(t, config(t, dir))
	store, _ := s2.svc.ReadModels().Current()
	if o, err := store.GetOrder(ctx, id); err != nil || o.Shipping.Carrier != "ups" {
		t.Fatalf("after restart: %+v %v", o, err)
	}
}
