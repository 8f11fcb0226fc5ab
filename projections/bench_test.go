package projections_test

import (
	"context"
	"flag"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// fillOrders appends n orders of five events each (place, reserved, paid,
// shipped, delivered) with 32 concurrent writers and returns the head.
func fillOrders(tb testing.TB, s *eventstore.Store, n int) uint64 {
	tb.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	next := make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
	}()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				id := uuid.NewString()
				meta := domain.EventMeta{CommandID: uuid.NewString(), OccurredAt: time.Now()}
				var evs []eventstore.EventData
				for _, d := range []domain.EventData{
					domain.OrderPlaced{OrderID: id, CustomerID: "c", Total: domain.Money{Amount: 1000, Currency: "EUR"}, Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}},
					domain.StockReserved{},
					domain.PaymentSucceeded{PaymentID: "p", Amount: domain.Money{Amount: 1000, Currency: "EUR"}},
					domain.OrderShipped{Carrier: "c", TrackingNumber: "t"},
					domain.OrderDelivered{},
				} {
					typ, data, md, err := domain.EncodeEvent(domain.Event{Type: d.EventType(), Data: d, Meta: meta})
					if err != nil {
						tb.Error(err)
						return
					}
					evs = append(evs, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md})
				}
				if _, err := s.Append(ctx, "order-"+id, eventstore.NoStream(), evs...); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	head, err := s.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return head
}

// BenchmarkProjectionCatchUp measures events/s applied by the runner from
// the event store's subscription, from position 0 to the head, into SQLite
// and (with ORDO_TEST_POSTGRES_DSN set) PostgreSQL. One op is one event.
func BenchmarkProjectionCatchUp(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchCatchUp(b, target{dir: b.TempDir()}) })
	b.Run("postgres", func(b *testing.B) { benchCatchUp(b, target{dsn: projectionstest.FreshPostgres(b), dir: b.TempDir()}) })
}

func benchCatchUp(b *testing.B, tg target) {
	ctx := context.Background()
	es, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	// The fill stays inside the timed region so the benchmark framework
	// sizes b.N by the whole run and never grows it past what fits; the
	// reported rate covers the catch-up alone.
	head := fillOrders(b, es, (b.N+4)/5)
	store := tg.openStore(b)
	runner := projections.NewRunner(store, serve.ProjectionSource{Store: es}, nil)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start, cpu := time.Now(), cpuTime()
	go runner.Run(rctx)
	if err := runner.WaitFor(ctx, head); err != nil {
		b.Fatal(err)
	}
	reportRate(b, runner.Status(ctx).Events, start, cpu)
}

// reportRate reports events/s since start and the CPU time the process
// spent per event (all goroutines, the embedded event store's included):
// on a machine shared with other work the rate swings from run to run,
// the CPU time much less.
func reportRate(b *testing.B, events int64, start time.Time, cpu time.Duration) {
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(events), "cpu-µs/event")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProjectionFeed drains the runner's feed alone — the event
// store's filtered $all subscription over gRPC, as ProjectionSource hands
// it out — from position 0 to the head without applying anything: the
// ceiling any projection catch-up can reach. One op is one event.
func BenchmarkProjectionFeed(b *testing.B) {
	ctx := context.Background()
	es, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	head := fillOrders(b, es, (b.N+4)/5) // timed, as in benchCatchUp
	start := time.Now()
	feed, err := serve.ProjectionSource{Store: es}.SubscribeOrders(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer feed.Close()
	var events int64
	cpu := cpuTime()
	for pos := uint64(0); pos < head; {
		it, err := feed.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if it.Event != nil {
			events++
			pos = it.Event.Position
		}
		pos = max(pos, it.Checkpoint)
	}
	reportRate(b, events, start, cpu)
}

// BenchmarkProjectionApply measures the runner applying events from a feed
// held in memory — no event store, no gRPC — into SQLite and (with
// ORDO_TEST_POSTGRES_DSN set) PostgreSQL: the read-model side of catch-up
// alone. "together": each order's five events arrive back to back, as
// BenchmarkProjectionCatchUp's fill appends them; "interleaved": 4,096
// orders are in flight at once, so the events of a batch mostly belong to
// orders placed in earlier batches, as in live traffic; "trickle": the
// same, but the feed hands over 16 events at a time and waits until they are
// applied, so batches stay small, as under live traffic, where the runner
// applies whatever arrived since its last commit. One op is one event.
func BenchmarkProjectionApply(b *testing.B) {
	for _, mode := range []struct {
		name     string
		inFlight int
		burst    int
	}{{"together", 1, 0}, {"interleaved", 4096, 0}, {"trickle", 4096, 16}} {
		b.Run("sqlite/"+mode.name, func(b *testing.B) { benchApply(b, target{dir: b.TempDir()}, mode.inFlight, mode.burst) })
		b.Run("postgres/"+mode.name, func(b *testing.B) {
			benchApply(b, target{dsn: projectionstest.FreshPostgres(b), dir: b.TempDir()}, mode.inFlight, mode.burst)
		})
	}
}

// benchApply runs the runner over lifecycleFeed(inFlight); with burst > 0
// the feed waits, after every burst events, until the runner has applied
// them.
func benchApply(b *testing.B, tg target, inFlight, burst int) {
	ctx := context.Background()
	src := lifecycleFeed(b, (b.N+4)/5, inFlight)
	store := tg.openStore(b)
	runner := projections.NewRunner(store, src, nil)
	if burst > 0 {
		src.burst, src.wait = burst, runner.WaitFor
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	go runner.Run(rctx)
	if err := runner.WaitFor(ctx, src.head); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportRate(b, runner.Status(ctx).Events, start, cpu)
}

// memSource is a Source over events held in memory.
type memSource struct {
	events []projections.StoredEvent
	head   uint64
	burst  int                                 // with wait: hand over this many events, then wait
	wait   func(context.Context, uint64) error // until the runner has applied the position
}

// lifecycleFeed builds the five-event lifecycles of n orders, inFlight of
// them progressing at once (one event each in turn).
func lifecycleFeed(tb testing.TB, n, inFlight int) *memSource {
	tb.Helper()
	src := &memSource{}
	type order struct {
		id   string
		evs  []domain.EventData
		next int
	}
	var active []*order
	started := 0
	for started < n || len(active) > 0 {
		for len(active) < inFlight && started < n {
			id := uuid.NewString()
			active = append(active, &order{id: id, evs: []domain.EventData{
				domain.OrderPlaced{OrderID: id, CustomerID: "c", Total: domain.Money{Amount: 1000, Currency: "EUR"}, Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}},
				domain.StockReserved{},
				domain.PaymentSucceeded{PaymentID: "p", Amount: domain.Money{Amount: 1000, Currency: "EUR"}},
				domain.OrderShipped{Carrier: "c", TrackingNumber: "t"},
				domain.OrderDelivered{},
			}})
			started++
		}
		kept := active[:0]
		for _, o := range active {
			d := o.evs[o.next]
			typ, data, md, err := domain.EncodeEvent(domain.Event{Type: d.EventType(), Data: d,
				Meta: domain.EventMeta{CommandID: uuid.NewString(), OccurredAt: time.Now()}})
			if err != nil {
				tb.Fatal(err)
			}
			src.head++
			src.events = append(src.events, projections.StoredEvent{Stream: "order-" + o.id, Revision: uint64(o.next),
				Position: src.head, Type: typ, Data: data, Metadata: md, Created: time.Now()})
			if o.next++; o.next < len(o.evs) {
				kept = append(kept, o)
			}
		}
		active = kept
	}
	return src
}

func (s *memSource) SubscribeOrders(_ context.Context, after uint64) (projections.Feed, error) {
	return &memFeed{events: s.events[after:], burst: s.burst, wait: s.wait}, nil
}

func (s *memSource) Head(context.Context) (uint64, error) { return s.head, nil }

type memFeed struct {
	events []projections.StoredEvent
	done   bool
	burst  int
	wait   func(context.Context, uint64) error
	sent   int    // events handed over
	last   uint64 // position of the last one
}

func (f *memFeed) Next(ctx context.Context) (projections.FeedItem, error) {
	if len(f.events) == 0 {
		if !f.done {
			f.done = true
			return projections.FeedItem{CaughtUp: true}, nil
		}
		<-ctx.Done()
		return projections.FeedItem{}, ctx.Err()
	}
	if f.burst > 0 && f.sent > 0 && f.sent%f.burst == 0 {
		if err := f.wait(ctx, f.last); err != nil {
			return projections.FeedItem{}, err
		}
	}
	e := &f.events[0]
	f.events = f.events[1:]
	f.sent, f.last = f.sent+1, e.Position
	return projections.FeedItem{Event: e}, nil
}

func (f *memFeed) Close() error { return nil }

// BenchmarkProjectionRebuild measures what `ordo replay` does: a Manager
// whose live read models have caught up rebuilds them from scratch into
// the other generation, from the call to the swap, in SQLite and (with
// ORDO_TEST_POSTGRES_DSN set) PostgreSQL. One op is one event.
func BenchmarkProjectionRebuild(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchRebuild(b, target{dir: b.TempDir()}) })
	b.Run("postgres", func(b *testing.B) { benchRebuild(b, target{dsn: projectionstest.FreshPostgres(b), dir: b.TempDir()}) })
}

var rebuildProfile = flag.String("rebuildprofile", "", "write a CPU profile of the rebuild alone (without the fill) to this file")

// profileRebuild starts the -rebuildprofile CPU profile, if asked for.
func profileRebuild(b *testing.B) (stop func()) {
	if *rebuildProfile == "" {
		return func() {}
	}
	f, err := os.Create(*rebuildProfile)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func benchRebuild(b *testing.B, tg target) {
	ctx := context.Background()
	es, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	head := fillOrders(b, es, (b.N+4)/5) // timed, as in benchCatchUp
	m := tg.openManager(b, es)
	defer m.Close()
	if _, live := m.Current(); live.WaitFor(ctx, head) != nil {
		b.Fatal("the live read models did not catch up")
	}
	stopProfile := profileRebuild(b)
	start, cpu := time.Now(), cpuTime()
	if err := m.Rebuild(ctx, projections.RebuildOptions{}); err != nil {
		b.Fatal(err)
	}
	stopProfile()
	_, r := m.Current()
	reportRate(b, r.Status(ctx).Events, start, cpu)
}
