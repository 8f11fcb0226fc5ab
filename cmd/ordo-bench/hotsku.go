package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/jsonwire"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// hotSKUStock is what every system starts with: far more than a run can
// reserve, so every reservation of the measurement succeeds everywhere.
const hotSKUStock = 1_000_000_000

// hotSKURequestTimeout bounds one request of any system; hotSKUAttempts
// bounds how often Ordo's client resends a reservation whose outcome it
// did not get (same command ID and order, so it is applied at most once).
const (
	hotSKURequestTimeout = 10 * time.Second
	hotSKUAttempts       = 3
)

// hotSKUOptions are the flags of `ordo-bench hot-sku`.
type hotSKUOptions struct {
	clients    int
	duration   time.Duration
	orders     int // orders placed before the run; each reservation takes one
	natsURL    string
	esdbURL    string
	compare    bool
	cpuProfile string
	connOpts   []natsgo.Option // the credentials for --nats-url
}

// hotSKUReport is everything one run measured; --json prints it.
type hotSKUReport struct {
	Clients  int                `json:"clients"`
	Duration time.Duration      `json:"duration_ns"`
	SKU      string             `json:"sku"`
	Ordo     hotSKUOrdo         `json:"ordo"`
	Bare     *loadResult        `json:"bare_request_reply,omitempty"`
	Redis    hotSKUClassic      `json:"redis_lua"`
	Postgres hotSKUClassic      `json:"postgres"`
	Ratios   map[string]float64 `json:"ratios"`
}

// hotSKUOrdo is Ordo's measurement and its oversell check.
type hotSKUOrdo struct {
	loadResult
	// Ambiguous reservations got no outcome after every attempt; they may
	// or may not have been applied.
	Ambiguous int64       `json:"ambiguous"`
	Check     hotSKUCheck `json:"check"`
	// CPUPerOp is this process's CPU time (clients, NATS server, stock
	// service and event store together) over the run, per reservation.
	CPUPerOp time.Duration `json:"cpu_per_reservation_ns"`
	// LoadAvg is the machine's 1-minute load average at the end of the run.
	LoadAvg float64 `json:"load_average"`
}

// hotSKUCheck is the zero-oversell check at the end of Ordo's run.
type hotSKUCheck struct {
	Ran       bool             `json:"ran"`
	OK        bool             `json:"ok"`
	Successes int64            `json:"successful_reservations"`
	Stock     domain.StockView `json:"stock"`  // as the service reports it (GetStock)
	Folded    bool             `json:"folded"` // the stream was replayed through the domain
	FoldSkip  string           `json:"fold_skipped,omitempty"`
	Reserved  int64            `json:"folded_reservations"` // orders in the stream's InventoryReserved events
	// Appends is how many appends carried them: the lane stamps every
	// event of one batch with the same time, so a new time is a new append.
	Appends    int64            `json:"reservation_appends"`
	FoldedView domain.StockView `json:"folded_stock"`
	Problems   []string         `json:"problems,omitempty"`
}

// hotSKUClassic is the measurement of one classic answer, or why it was skipped.
type hotSKUClassic struct {
	Skipped string      `json:"skipped,omitempty"`
	Setup   string      `json:"setup,omitempty"`
	Result  *loadResult `json:"result,omitempty"`
	Check   string      `json:"check,omitempty"`
	CheckOK bool        `json:"check_ok"`
	// ServerCPUPerOp and ClientCPUPerOp are the CPU time per reservation
	// of the server's process and of this one (the clients), where measured.
	ServerCPUPerOp time.Duration `json:"server_cpu_per_reservation_ns,omitempty"`
	ClientCPUPerOp time.Duration `json:"client_cpu_per_reservation_ns,omitempty"`
}

// errSoldOut: a classic system refused a reservation. With hotSKUStock
// units it never should during a run; each one counts as an error.
var errSoldOut = errors.New("sold out")

// runHotSKU measures reservations on one SKU through Ordo's stock API and,
// when installed, through Redis+Lua and PostgreSQL, and fails when any
// system's consistency check does.
func runHotSKU(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("ordo-bench hot-sku [--clients N] [--duration D] [--orders N] [--nats-url URL [--nats-user U --nats-password P | --nats-creds FILE | --nats-nkey FILE] [--nats-ca FILE] [--esdb-url URL]] [--json]",
		"Reservations per second on ONE SKU: N closed-loop clients each reserve 1 unit for a fresh order\n"+
			"through the NATS stock API; a reply means the event store has fsync'd the reservation. The\n"+
			"stock API reserves only for orders that exist, so --orders orders are placed first (not\n"+
			"measured), on a service run with --manual-stock (where clients reserve themselves). At the\n"+
			"end it checks zero oversell: the service's reserved count equals the successful reservations,\n"+
			"available = on hand - reserved >= 0, and the SKU's stream replays through the domain.\n"+
			"It then measures bare NATS request-reply with the same clients (the transport's ceiling) and,\n"+
			"when installed, the classic answers with the same clients, each started here on a loopback port\n"+
			"in a temporary directory and stopped at the end: redis-server with appendfsync always and a Lua\n"+
			"conditional DECRBY called with EVALSHA, and PostgreSQL (initdb/pg_ctl, or\n"+
			"$ORDO_BENCH_POSTGRES_DSN) with a conditional UPDATE on one row, synchronous_commit on.",
		[]string{"ordo-bench hot-sku", "ordo-bench hot-sku --clients 64 --duration 10s --json",
			"ordo-bench hot-sku --nats-url nats://127.0.0.1:4222 --esdb-url 'esdb://127.0.0.1:2113?tls=false'"}, stderr)
	var o hotSKUOptions
	fs.IntVar(&o.clients, "clients", 64, "concurrent closed-loop clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each measurement runs")
	fs.IntVar(&o.orders, "orders", 100_000, "orders placed (for 1 unit of the SKU each) before Ordo's run, which ends when every one holds its reservation or --duration passes: the stock API reserves only for orders that exist (placing them is not measured)")
	fs.StringVar(&o.natsURL, "nats-url", "", "a running ordo serve (default: start an embedded one in a temporary directory)")
	fs.StringVar(&o.esdbURL, "esdb-url", "", "with --nats-url: its event store, so the check can replay the SKU's stream")
	fs.BoolVar(&o.compare, "compare", true, "also measure Redis+Lua and PostgreSQL when they are installed")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of Ordo's measurement to this file")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	creds := flagset.AddNATSCredentials(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.connOpts, err = connectOptions(o.natsURL, creds); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("hot-sku takes no arguments, got %q", fs.Args())}
	}
	if o.clients < 1 || o.clients > 10_000 || o.duration <= 0 || o.orders < 1 {
		return usageError{"--clients must be between 1 and 10000, --duration and --orders positive"}
	}
	rep := hotSKUReport{Clients: o.clients, Duration: o.duration, SKU: "bench-hot-" + uuid.NewString()[:8]}
	if err := benchOrdoHotSKU(ctx, o, &rep, stderr); err != nil {
		return err
	}
	if o.compare {
		rep.Redis = benchRedisHotSKU(ctx, o, rep.SKU)
		rep.Postgres = benchPostgresHotSKU(ctx, o, rep.SKU)
	} else {
		rep.Redis.Skipped, rep.Postgres.Skipped = "--compare=false", "--compare=false"
	}
	rep.Ratios = hotSKURatios(rep)
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		printHotSKU(stdout, rep)
	}
	return hotSKUFailure(rep)
}

// hotSKUFailure turns a failed consistency check into the command's error.
func hotSKUFailure(rep hotSKUReport) error {
	var failed []string
	if !rep.Ordo.Check.OK {
		failed = append(failed, "ordo: "+strings.Join(rep.Ordo.Check.Problems, "; "))
	}
	for name, c := range map[string]hotSKUClassic{"redis": rep.Redis, "postgres": rep.Postgres} {
		if c.Result != nil && !c.CheckOK {
			failed = append(failed, name+": "+c.Check)
		}
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return fmt.Errorf("hot-sku consistency check failed: %s", strings.Join(failed, " | "))
	}
	return nil
}

func hotSKURatios(rep hotSKUReport) map[string]float64 {
	r := map[string]float64{}
	ordo := rep.Ordo.PerSec
	if rep.Bare != nil && rep.Bare.PerSec > 0 {
		r["ordo_per_bare_request_reply"] = ordo / rep.Bare.PerSec
	}
	if rep.Redis.Result != nil && rep.Redis.Result.PerSec > 0 {
		r["ordo_per_redis_lua"] = ordo / rep.Redis.Result.PerSec
	}
	if rep.Postgres.Result != nil && rep.Postgres.Result.PerSec > 0 {
		r["ordo_per_postgres"] = ordo / rep.Postgres.Result.PerSec
	}
	return r
}

// ---- Ordo ----

// benchOrdoHotSKU measures reservations through the stock API, checks for
// oversell, and measures the bare request-reply transport.
func benchOrdoHotSKU(ctx context.Context, o hotSKUOptions, rep *hotSKUReport, stderr io.Writer) error {
	url, esdbURL := o.natsURL, o.esdbURL
	if url == "" {
		dir, err := os.MkdirTemp("", "ordo-bench-hot-sku-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		svc, err := serve.Start(ctx, serve.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0",
			ManualStock: true}) // the bench reserves itself, through the stock API
		if err != nil {
			return err
		}
		defer svc.Shutdown(context.Background())
		url, esdbURL = svc.NATSURL(), svc.ESDBURL()
	}
	nc, err := natsgo.Connect(url, append(o.connOpts, natsgo.Name("ordo-bench-hot-sku"))...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", url, err)
	}
	defer nc.Close()
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{Timeout: hotSKURequestTimeout})
	if err != nil {
		return err
	}
	defer client.Close()
	actx, cancel := context.WithTimeout(ctx, hotSKURequestTimeout)
	_, err = client.AddStock(actx, rep.SKU, hotSKUStock, "bench-stock-"+rep.SKU)
	cancel()
	if err != nil {
		return fmt.Errorf("stock the bench SKU %s: %w", rep.SKU, err)
	}
	pool, err := placeHotSKUOrders(ctx, client, nc, rep.SKU, o.orders, max(o.clients, 64))
	if err != nil {
		return err
	}
	var ok, ambiguous atomic.Int64
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	runCtx, used := context.WithCancel(ctx) // cancelled once every order holds its reservation
	defer used()
	cpu := processCPU()
	res := runLoad(runCtx, o.clients, o.duration, reserveOp(runCtx, client, rep.SKU, pool, used, &ok, &ambiguous))
	cpu = processCPU() - cpu
	stopProfile()
	rep.Ordo = hotSKUOrdo{loadResult: res, Ambiguous: ambiguous.Load(), CPUPerOp: cpu / time.Duration(max(res.Ops, 1)), LoadAvg: loadAverage()}
	rep.Ordo.Check = checkOversell(ctx, client, esdbURL, rep.SKU, ok.Load(), ambiguous.Load())
	bare, err := measureRequestReply(ctx, url, o.connOpts, nc, o.clients, o.duration)
	if err != nil {
		fmt.Fprintf(stderr, "note: bare request-reply not measured: %v\n", err)
		return nil
	}
	rep.Bare = &bare
	return nil
}

// placeHotSKUOrders places n orders of 1 unit of sku, with the given
// number of concurrent clients, and returns their IDs in a closed channel
// once the service's saga and read models have taken them in, so that
// work is not measured with the reservations.
func placeHotSKUOrders(ctx context.Context, c *ordonats.Client, nc *natsgo.Conn, sku string, n, clients int) (chan string, error) {
	var last highWater // the highest position of an OrderPlaced
	ids := make(chan string, n)
	todo := make(chan struct{}, n)
	for range n {
		todo <- struct{}{}
	}
	close(todo)
	errs := make(chan error, clients)
	for range clients {
		go func() {
			for range todo {
				id := uuid.NewString()
				out, err := c.PlaceOrder(ctx, domain.PlaceOrder{Order: id, CustomerID: "bench", Currency: "EUR",
					Lines: []domain.Line{{SKU: sku, Quantity: 1, UnitPrice: 100}}}, ordonats.WithCommandID("place-"+id))
				if err != nil {
					errs <- fmt.Errorf("place the bench's orders: %w", err)
					return
				}
				last.raise(out.Position)
				ids <- id
			}
			errs <- nil
		}()
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	close(ids)
	if first != nil {
		return nil, first
	}
	return ids, awaitCaughtUp(ctx, nc, last.position())
}

// awaitCaughtUp waits until the service's saga and read models have handled
// every event up to pos (through their NATS queries), at most a few minutes.
func awaitCaughtUp(ctx context.Context, nc *natsgo.Conn, pos uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		saga, sagaErr := nc.RequestWithContext(ctx, "ordo.query.v1.saga", nil)
		var st struct {
			Position uint64 `json:"position"`
		}
		if sagaErr == nil && json.Unmarshal(saga.Data, &st) == nil && st.Position >= pos {
			// Waits (up to the service's --read-wait) for the read models.
			m, err := nc.RequestWithContext(ctx, "ordo.query.v1.stats", []byte("min_position="+strconv.FormatUint(pos, 10)))
			if err == nil && m.Header.Get(ordonats.HeaderStatus) == "200" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the service's saga and read models did not take in the bench's orders: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// reserveOp reserves 1 unit for the next order of the pool per call, and
// ends the run (used) when the pool is empty. A request runs to its end
// even when the run's time is up (it uses neither the run's context nor
// ctx's cancellation, only the client's timeout of hotSKURequestTimeout),
// so every reservation the service applied is counted; one whose reply was
// lost is resent with the same command ID.
func reserveOp(ctx context.Context, c *ordonats.Client, sku string, pool <-chan string, used func(), ok, ambiguous *atomic.Int64) func(context.Context, int, int) error {
	rctx := context.WithoutCancel(ctx)
	return func(_ context.Context, _, _ int) error {
		order, more := <-pool
		if !more {
			used()
			return context.Canceled // not an error: the run is over
		}
		cmd := uuid.NewString()
		var err error
		for range hotSKUAttempts {
			_, err = c.ReserveStock(rctx, sku, order, 1, cmd)
			var ce *ordonats.CommandError
			switch {
			case err == nil:
				ok.Add(1)
				return nil
			case errors.As(err, &ce) && ce.Code != string(domain.CodeUnavailable):
				return err // refused: certainly not applied
			case ctx.Err() != nil:
				ambiguous.Add(1)
				return err
			}
		}
		ambiguous.Add(1)
		return err
	}
}

// checkOversell compares the service's stock with the successful
// reservations and replays the SKU's stream through the domain, which
// refuses a reservation beyond the available units.
func checkOversell(ctx context.Context, c *ordonats.Client, esdbURL, sku string, ok, ambiguous int64) hotSKUCheck {
	ch := hotSKUCheck{Ran: true, Successes: ok}
	fail := func(format string, args ...any) { ch.Problems = append(ch.Problems, fmt.Sprintf(format, args...)) }
	gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	v, err := c.GetStock(gctx, sku)
	if err != nil {
		fail("get stock: %v", err)
		return ch
	}
	ch.Stock = v
	if v.Reserved < ok || v.Reserved > ok+ambiguous {
		fail("reserved %d, but %d reservations succeeded (%d without an outcome)", v.Reserved, ok, ambiguous)
	}
	if v.Available != v.OnHand-v.Reserved || v.Available < 0 {
		fail("available %d is not on hand %d - reserved %d, or negative", v.Available, v.OnHand, v.Reserved)
	}
	if v.OnHand != hotSKUStock {
		fail("on hand %d, want the %d units stocked", v.OnHand, hotSKUStock)
	}
	if esdbURL == "" {
		ch.FoldSkip = "no event store to read: pass --esdb-url with --nats-url"
	} else {
		foldStockStream(gctx, esdbURL, sku, &ch, fail)
	}
	ch.OK = len(ch.Problems) == 0
	return ch
}

// foldStockStream replays sku-<sku> from the event store through
// domain.Stock.Apply and compares the result with the service's view.
func foldStockStream(ctx context.Context, esdbURL, sku string, ch *hotSKUCheck, fail func(string, ...any)) {
	store, err := eventstore.Connect(ctx, esdbURL)
	if err != nil {
		fail("connect to the event store: %v", err)
		return
	}
	defer store.Close()
	st := domain.NewStock(sku)
	var batchAt time.Time
	err = store.ReadStream(ctx, domain.StockStream(sku), 0, func(e eventstore.RecordedEvent) error {
		ev, err := jsonwire.DecodeEvent(e.Type, e.Data, e.Metadata)
		if err != nil {
			return fmt.Errorf("revision %d: %w", e.Revision, err)
		}
		if r, ok := ev.Data.(domain.InventoryReserved); ok {
			ch.Reserved += int64(len(r.Reservations()))
			if !ev.Meta.OccurredAt.Equal(batchAt) {
				ch.Appends++
				batchAt = ev.Meta.OccurredAt
			}
		}
		return st.Apply(ev.Data)
	})
	if err != nil {
		fail("replay %s: %v", domain.StockStream(sku), err)
		return
	}
	ch.Folded, ch.FoldedView = true, st.View()
	if ch.FoldedView != ch.Stock {
		fail("the replayed stream gives %+v, the service said %+v", ch.FoldedView, ch.Stock)
	}
	if ch.Reserved != ch.Stock.Reserved {
		fail("%d reservations of 1 unit in the stream, but %d units reserved", ch.Reserved, ch.Stock.Reserved)
	}
}

// measureRequestReply is the transport's ceiling: the same clients send a
// reservation-sized request over core NATS to a responder on its own
// connection that answers at once, with no stock service behind it.
func measureRequestReply(ctx context.Context, url string, connOpts []natsgo.Option, nc *natsgo.Conn, clients int, d time.Duration) (loadResult, error) {
	rc, err := natsgo.Connect(url, append(connOpts, natsgo.Name("ordo-bench-responder"))...)
	if err != nil {
		return loadResult{}, err
	}
	defer rc.Close()
	subject := "ordo.bench.rr." + uuid.NewString()[:8]
	reply := []byte(`{"sku":"bench","on_hand":1000000000,"reserved":1,"available":999999999,"revision":1,"events":["InventoryReserved"]}`)
	sub, err := rc.Subscribe(subject, func(m *natsgo.Msg) { _ = m.Respond(reply) })
	if err != nil {
		return loadResult{}, err
	}
	defer sub.Unsubscribe()
	if err := rc.Flush(); err != nil {
		return loadResult{}, err
	}
	return runLoad(ctx, clients, d, func(_ context.Context, _, _ int) error {
		body, _ := json.Marshal(ordonats.StockRequest{CommandID: uuid.NewString(), OrderID: uuid.NewString(), Quantity: 1})
		rctx, cancel := context.WithTimeout(ctx, hotSKURequestTimeout)
		defer cancel()
		_, err := nc.RequestWithContext(rctx, subject, body)
		return err
	}), nil
}
