package eventstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// backends are the port's two implementations: the embedded store called
// in-process, and the official client over gRPC (to the same store).
var backends = []string{"in-process", "gRPC"}

// scanStore is an embedded store holding events of order-, sku- and other
// streams in appends of 1 to 40 events, a soft-deleted stream (whose
// "$metadata" system event ScanAll must skip like ReadAll) and every event
// ReadAll returns, in order; reached through the backend named.
func scanStore(tb testing.TB, backend string) (*Store, []RecordedEvent) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := OpenEmbedded(ctx, EmbeddedConfig{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if backend == "gRPC" {
		if s, err = Connect(ctx, s.URL()); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
	}
	for i := range 120 {
		stream := fmt.Sprintf("%s-%d", []string{"order", "sku", "other"}[i%3], i%37)
		events := make([]EventData, 1+i%40)
		for j := range events {
			events[j] = EventData{ID: uuid.New(), Type: fmt.Sprintf("E%d", j%5),
				Data: fmt.Appendf(nil, `{"i":%d,"j":%d}`, i, j), Metadata: []byte(`{"command_id":"c"}`)}
		}
		if _, err := s.Append(ctx, stream, Any(), events...); err != nil {
			tb.Fatal(err)
		}
		if i == 60 {
			if _, err := s.Delete(ctx, "other-5", Any()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	var all []RecordedEvent
	if err := s.ReadAll(ctx, 0, Filter{}, func(e RecordedEvent) error { all = append(all, e); return nil }); err != nil {
		tb.Fatal(err)
	}
	return s, all
}

// tinyScan cuts the log into ranges of a handful of records read in pages
// of a few, so every edge (range start, range end, page continuation,
// batch and queue limits) is crossed many times.
func tinyScan() scanConfig {
	return scanConfig{window: 3, interval: 2, readers: 3, lookahead: 1, batch: 2, queue: 1, page: 4}
}

func collect(tb testing.TB, s *Store, from uint64, f Filter, cfg scanConfig) []RecordedEvent {
	tb.Helper()
	var got []RecordedEvent
	err := s.scanAll(context.Background(), from, f, func(e RecordedEvent) error { got = append(got, e); return nil }, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// TestScanAllMatchesReadAll: whatever the shape of the scan, from wherever
// it starts and whatever the filter, ScanAll delivers exactly what ReadAll
// does, in the same order: no event lost or doubled at a range's edges.
func TestScanAllMatchesReadAll(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testScanAllMatchesReadAll(t, backend) })
	}
}

func testScanAllMatchesReadAll(t *testing.T, backend string) {
	s, all := scanStore(t, backend)
	ctx := context.Background()
	if len(all) < 2000 {
		t.Fatalf("the store holds %d events, want at least 2000 for ranges to matter", len(all))
	}
	noBounds := tinyScan()
	noBounds.noBounds = true
	big := defaultScanConfig()
	big.window, big.interval, big.page = 32, 8, 257
	tinySpaced, bigSpaced := tinyScan(), big
	tinySpaced.spaced, bigSpaced.spaced = true, true
	configs := map[string]scanConfig{"tiny": tinyScan(), "one range": noBounds, "default": defaultScanConfig(), "256-record ranges": big,
		"tiny, spaced": tinySpaced, "256 positions a range": bigSpaced}
	if testing.Short() { // the race detector makes the full matrix slow
		configs = map[string]scanConfig{"tiny": tinyScan(), "256-record ranges": big, "tiny, spaced": tinySpaced}
	}
	mid := all[len(all)/2].Position
	for name, cfg := range configs {
		for _, from := range []uint64{0, all[0].Position, mid, all[len(all)-1].Position, all[len(all)-1].Position + 1} {
			for _, f := range []Filter{{}, {StreamPrefixes: []string{"order-", "sku-"}}, {EventTypeRegex: "E[13]"}} {
				var want []RecordedEvent
				if err := s.ReadAll(ctx, from, f, func(e RecordedEvent) error { want = append(want, e); return nil }); err != nil {
					t.Fatal(err)
				}
				got := collect(t, s, from, f, cfg)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s from %d, filter %+v: got %d events, want %d%s", name, from, f, len(got), len(want), firstDiff(got, want))
				}
			}
		}
	}
	if got := collect(t, s, 0, Filter{}, defaultScanConfig()); !reflect.DeepEqual(got, all) {
		t.Errorf("ScanAll's defaults: got %d events, want %d%s", len(got), len(all), firstDiff(got, all))
	}
	var pub []RecordedEvent
	if err := s.ScanAll(ctx, 0, Filter{}, func(e RecordedEvent) error { pub = append(pub, e); return nil }); err != nil || !reflect.DeepEqual(pub, all) {
		t.Errorf("ScanAll: got %d events (%v), want %d", len(pub), err, len(all))
	}
}

func firstDiff(got, want []RecordedEvent) string {
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			return fmt.Sprintf("; first difference at %d: got %s@%d (position %d), want %s@%d (position %d)",
				i, got[i].Stream, got[i].Revision, got[i].Position, want[i].Stream, want[i].Revision, want[i].Position)
		}
	}
	return ""
}

// TestScanBoundsAreEventPositions: through the gRPC client the boundaries
// come in increasing order, each is the position of a record (an
// EventStoreDB server refuses any other), and they cut the log into many
// ranges.
func TestScanBoundsAreEventPositions(t *testing.T) {
	s, all := scanStore(t, "gRPC")
	ctx := context.Background()
	records := map[uint64]bool{}
	if err := s.b.readAll(ctx, 0, 0, 1000, func(e RecordedEvent) error {
		records[e.Position] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(records) <= len(all) {
		t.Fatalf("%d records, %d user events: the soft delete wrote no system record", len(records), len(all))
	}
	cfg := tinyScan()
	head := all[len(all)-1].Position
	bounds := make(chan uint64, 1)
	go s.b.scanBounds(ctx, 0, head, cfg, bounds)
	var got []uint64
	for b := range bounds {
		if !records[b] {
			t.Errorf("boundary %d is not a record's position", b)
		}
		if len(got) > 0 && b <= got[len(got)-1] {
			t.Errorf("boundary %d after %d", b, got[len(got)-1])
		}
		got = append(got, b)
	}
	if want := len(records) / (cfg.window * cfg.interval) / 2; len(got) < want {
		t.Errorf("%d boundaries over %d records, want at least %d", len(got), len(records), want)
	}
	if last := got[len(got)-1]; last < head-uint64(4*cfg.window*cfg.interval) {
		t.Errorf("the last boundary %d is far from the head %d", last, head)
	}
}

// TestScanAllStopsAtFnError: fn's error ends the scan, is returned as is,
// and everything delivered before it is ReadAll's prefix; the scan's
// goroutines are gone when it returns (the race detector and the test's
// leak of a blocked reader would show otherwise).
func TestScanAllStopsAtFnError(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testScanAllStopsAtFnError(t, backend) })
	}
}

func testScanAllStopsAtFnError(t *testing.T, backend string) {
	s, all := scanStore(t, backend)
	stop := errors.New("enough")
	for _, n := range []int{1, 7, 500, len(all) - 1} {
		var got []RecordedEvent
		err := s.scanAll(context.Background(), 0, Filter{}, func(e RecordedEvent) error {
			if got = append(got, e); len(got) == n {
				return stop
			}
			return nil
		}, tinyScan())
		if !errors.Is(err, stop) {
			t.Fatalf("after %d events: %v, want fn's error", n, err)
		}
		if !reflect.DeepEqual(got, all[:n]) {
			t.Fatalf("stopped after %d events: got %d%s", n, len(got), firstDiff(got, all[:n]))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := s.scanAll(ctx, 0, Filter{}, func(RecordedEvent) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	}, tinyScan())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled scan returned %v after %d events, want context.Canceled", err, n)
	}
}

// TestScanAllUnderAppends: events appended while the scan runs may or may
// not be delivered, but everything stored before it is, in $all order,
// each event once.
func TestScanAllUnderAppends(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { testScanAllUnderAppends(t, backend) })
	}
}

func testScanAllUnderAppends(t *testing.T, backend string) {
	s, all := scanStore(t, backend)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			s.Append(ctx, fmt.Sprintf("order-live-%d", i%5), Any(), EventData{ID: uuid.New(), Type: "Live", Data: []byte(`{}`)})
		}
	}()
	got := collect(t, s, 0, Filter{}, tinyScan())
	cancel()
	wg.Wait()
	if len(got) < len(all) || !reflect.DeepEqual(got[:len(all)], all) {
		t.Fatalf("got %d events, want the %d stored before first%s", len(got), len(all), firstDiff(got, all))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Position <= got[i-1].Position {
			t.Fatalf("event %d at position %d follows %d", i, got[i].Position, got[i-1].Position)
		}
	}
}
