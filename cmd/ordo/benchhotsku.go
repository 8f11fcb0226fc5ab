package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
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

// hotSKUOptions are the flags of `ordo bench hot-sku`.
type hotSKUOptions struct {
	clients    int
	duration   time.Duration
	orders     int // orders placed before the run; each reservation takes one
	natsURL    string
	esdbURL    string
	compare    bool
	cpuProfile string
}

// hotSKUReport is everything one run measured; --json prints it.
type hotSKUReport struct {
	Clients  int                  `json:"clients"`
	Duration time.Duration        `json:"duration_ns"`
	SKU      string               `json:"sku"`
	Ordo     hotSKUOrdo           `json:"ordo"`
	Bare     *ordonats.LoadResult `json:"bare_request_reply,omitempty"`
	Redis    hotSKUClassic        `json:"redis_lua"`
	Postgres hotSKUClassic        `json:"postgres"`
	Ratios   map[string]float64   `json:"ratios"`
}

// hotSKUOrdo is Ordo's measurement and its oversell check.
type hotSKUOrdo struct {
	ordonats.LoadResult
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
	Skipped string               `json:"skipped,omitempty"`
	Setup   string               `json:"setup,omitempty"`
	Result  *ordonats.LoadResult `json:"result,omitempty"`
	Check   string               `json:"check,omitempty"`
	CheckOK bool                 `json:"check_ok"`
	// ServerCPUPerOp and ClientCPUPerOp are the CPU time per reservation
	// of the server's process and of this one (the clients), where measured.
	ServerCPUPerOp time.Duration `json:"server_cpu_per_reservation_ns,omitempty"`
	ClientCPUPerOp time.Duration `json:"client_cpu_per_reservation_ns,omitempty"`
}

// errSoldOut: a classic system refused a reservation. With hotSKUStock
// units it never should during a run; each one counts as an error.
var errSoldOut = errors.New("sold out")

func runBenchHotSKU(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ordo bench hot-sku [--clients N] [--duration D] [--nats-url URL] [--json]",
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
		[]string{"ordo bench hot-sku", "ordo bench hot-sku --clients 64 --duration 10s --json",
			"ordo bench hot-sku --nats-url nats://127.0.0.1:4222 --esdb-url 'esdb://127.0.0.1:2113?tls=false'"}, stderr)
	var o hotSKUOptions
	fs.IntVar(&o.clients, "clients", 64, "concurrent closed-loop clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each measurement runs")
	fs.IntVar(&o.orders, "orders", 20_000, "orders placed (for 1 unit of the SKU each) before Ordo's run, which ends when every one holds its reservation or --duration passes: the stock API reserves only for orders that exist")
	fs.StringVar(&o.natsURL, "nats-url", "", "a running ordo serve (default: start an embedded one in a temporary directory)")
	fs.StringVar(&o.esdbURL, "esdb-url", "", "with --nats-url: its event store, so the check can replay the SKU's stream")
	fs.BoolVar(&o.compare, "compare", true, "also measure Redis+Lua and PostgreSQL when they are installed")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of Ordo's measurement to this file")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("bench hot-sku takes no arguments, got %q", fs.Args())}
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
	nc, err := natsgo.Connect(url, natsgo.Name("ordo-bench-hot-sku"))
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
	res, err := ordonats.RunLoad(runCtx, o.clients, o.duration, reserveOp(runCtx, client, rep.SKU, pool, used, &ok, &ambiguous))
	cpu = processCPU() - cpu
	stopProfile()
	if err != nil {
		return err
	}
	rep.Ordo = hotSKUOrdo{LoadResult: res, Ambiguous: ambiguous.Load(), CPUPerOp: cpu / time.Duration(max(res.Ops, 1)), LoadAvg: loadAverage()}
	rep.Ordo.Check = checkOversell(ctx, client, esdbURL, rep.SKU, ok.Load(), ambiguous.Load())
	bare, err := measureRequestReply(ctx, url, nc, o.clients, o.duration)
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
	var last atomic.Uint64 // the highest position of an OrderPlaced
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
				for p := last.Load(); out.Position > p; p = last.Load() {
					if last.CompareAndSwap(p, out.Position) {
						break
					}
				}
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
	return ids, awaitCaughtUp(ctx, nc, last.Load())
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

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
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
		ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
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
func measureRequestReply(ctx context.Context, url string, nc *natsgo.Conn, clients int, d time.Duration) (ordonats.LoadResult, error) {
	rc, err := natsgo.Connect(url, natsgo.Name("ordo-bench-responder"))
	if err != nil {
		return ordonats.LoadResult{}, err
	}
	defer rc.Close()
	subject := "ordo.bench.rr." + uuid.NewString()[:8]
	reply := []byte(`{"sku":"bench","on_hand":1000000000,"reserved":1,"available":999999999,"revision":1,"events":["InventoryReserved"]}`)
	sub, err := rc.Subscribe(subject, func(m *natsgo.Msg) { _ = m.Respond(reply) })
	if err != nil {
		return ordonats.LoadResult{}, err
	}
	defer sub.Unsubscribe()
	if err := rc.Flush(); err != nil {
		return ordonats.LoadResult{}, err
	}
	return ordonats.RunLoad(ctx, clients, d, func(_ context.Context, _, _ int) error {
		body, _ := json.Marshal(ordonats.StockRequest{CommandID: uuid.NewString(), OrderID: uuid.NewString(), Quantity: 1})
		rctx, cancel := context.WithTimeout(ctx, hotSKURequestTimeout)
		defer cancel()
		_, err := nc.RequestWithContext(rctx, subject, body)
		return err
	})
}

// ---- Redis + Lua ----

// redisReserveLua reserves ARGV[1] units only if the counter holds that many.
const redisReserveLua = `local n = tonumber(ARGV[1])
local v = tonumber(redis.call('GET', KEYS[1]) or '-1')
if v >= n then return redis.call('DECRBY', KEYS[1], n) end
return -1`

// benchRedisHotSKU runs the workload against a redis-server it starts with
// appendonly yes and appendfsync always.
func benchRedisHotSKU(ctx context.Context, o hotSKUOptions, sku string) hotSKUClassic {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return hotSKUClassic{Skipped: "redis-server is not installed (Debian: apt-get install redis-server)"}
	}
	dir, err := os.MkdirTemp("", "ordo-bench-redis-")
	if err != nil {
		return hotSKUClassic{Skipped: "temporary directory: " + err.Error()}
	}
	defer os.RemoveAll(dir)
	addr, pid, stop, err := startRedis(ctx, bin, dir)
	if err != nil {
		return hotSKUClassic{Skipped: "redis-server did not start: " + err.Error()}
	}
	defer stop()
	conns := make([]*respConn, o.clients)
	for i := range conns {
		if conns[i], err = dialRESP(addr); err != nil {
			return hotSKUClassic{Skipped: "connect to redis-server: " + err.Error()}
		}
		defer conns[i].Close()
	}
	key := "stock:" + sku
	setup, sha, err := prepareRedis(conns[0], key)
	if err != nil {
		return hotSKUClassic{Skipped: "prepare redis-server: " + err.Error()}
	}
	var ok atomic.Int64
	serverCPU, clientCPU := childCPU(pid), processCPU()
	res, _ := ordonats.RunLoad(ctx, o.clients, o.duration, func(_ context.Context, c, _ int) error {
		v, err := conns[c].do("EVALSHA", sha, "1", key, "1")
		if err != nil {
			return err
		}
		if n, isInt := v.(int64); !isInt || n < 0 {
			return errSoldOut
		}
		ok.Add(1)
		return nil
	})
	serverCPU, clientCPU = childCPU(pid)-serverCPU, processCPU()-clientCPU
	out := hotSKUClassic{Setup: setup, Result: &res}
	if res.Ops > 0 {
		out.ServerCPUPerOp, out.ClientCPUPerOp = serverCPU/time.Duration(res.Ops), clientCPU/time.Duration(res.Ops)
	}
	left, err := conns[0].do("GET", key)
	n, _ := strconv.ParseInt(fmt.Sprint(left), 10, 64)
	out.CheckOK = err == nil && n == hotSKUStock-ok.Load()
	out.Check = fmt.Sprintf("counter %v (err %v) after %d successful reservations of %d units", left, err, ok.Load(), int64(hotSKUStock))
	if out.CheckOK {
		out.Check = fmt.Sprintf("counter fell by exactly the %d successful reservations", ok.Load())
	}
	return out
}

// startRedis starts redis-server on a free loopback port, durable on
// every write, and waits until it answers PING.
func startRedis(ctx context.Context, bin, dir string) (addr string, pid int, stop func(), err error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() { stopProcess(cmd) }
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitFor(ctx, 10*time.Second, func() error {
		c, err := dialRESP(addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.do("PING")
		return err
	}); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		return "", 0, nil, fmt.Errorf("%w; log: %s", err, lastLines(string(log), 3))
	}
	return addr, cmd.Process.Pid, stop, nil
}

// childCPU is the user plus system CPU time process pid has used.
func childCPU(pid int) time.Duration { return procCPU(pid, false) }

// procCPU is the user plus system CPU time process pid has used (with
// reaped, that of the children it waited for), from /proc/<pid>/stat in
// clock ticks of 10 ms (Linux's USER_HZ is 100); 0 where it cannot be read.
func procCPU(pid int, reaped bool) time.Duration {
	f := procStat(pid)
	if len(f) < 15 {
		return 0
	}
	fields := f[11:13] // utime, stime: fields 14 and 15 of proc_pid_stat(5)
	if reaped {
		fields = f[11:15] // and cutime, cstime
	}
	var ticks int64
	for _, v := range fields {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (which is in parentheses and may hold spaces): f[0] is the state, f[1]
// the parent's pid. Nil where it cannot be read.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// prepareRedis checks durability settings, stocks the key and loads the
// script; it returns a description of the setup and the script's SHA1.
func prepareRedis(c *respConn, key string) (setup, sha string, err error) {
	fsync, err := c.do("CONFIG", "GET", "appendfsync")
	if err != nil {
		return "", "", err
	}
	if l, _ := fsync.([]any); len(l) != 2 || l[1] != "always" {
		return "", "", fmt.Errorf("appendfsync is %v, want always", fsync)
	}
	info, err := c.do("INFO", "server")
	if err != nil {
		return "", "", err
	}
	version := "?"
	for _, line := range strings.Split(fmt.Sprint(info), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	if _, err := c.do("SET", key, strconv.Itoa(hotSKUStock)); err != nil {
		return "", "", err
	}
	s, err := c.do("SCRIPT", "LOAD", redisReserveLua)
	if err != nil {
		return "", "", err
	}
	sha, _ = s.(string)
	return "redis " + version + ", appendonly yes, appendfsync always, EVALSHA conditional DECRBY", sha, nil
}

// respConn is a minimal RESP2 client: one request in flight at a time.
type respConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func dialRESP(addr string) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, r: bufio.NewReader(c)}, nil
}

func (rc *respConn) Close() error { return rc.c.Close() }

// do sends one command and reads its reply: string, int64, nil, []any,
// or an error for a RESP error reply.
func (rc *respConn) do(args ...string) (any, error) {
	if err := rc.c.SetDeadline(time.Now().Add(hotSKURequestTimeout)); err != nil {
		return nil, err
	}
	b := append(rc.buf[:0], '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	rc.buf = b
	if _, err := rc.c.Write(b); err != nil {
		return nil, err
	}
	return rc.read(0)
}

func (rc *respConn) read(depth int) (any, error) {
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" || depth > 8 {
		return nil, fmt.Errorf("malformed RESP reply %q", line)
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, fmt.Errorf("redis: %s", line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 || n > 1<<24 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 || n > 1<<16 {
			return nil, err
		}
		l := make([]any, n)
		for i := range l {
			if l[i], err = rc.read(depth + 1); err != nil {
				return nil, err
			}
		}
		return l, nil
	}
	return nil, fmt.Errorf("malformed RESP reply %q", line)
}

// ---- PostgreSQL ----

// benchPostgresHotSKU runs the workload as a conditional UPDATE of one row,
// on $ORDO_BENCH_POSTGRES_DSN or on a throwaway cluster it starts.
func benchPostgresHotSKU(ctx context.Context, o hotSKUOptions, sku string) hotSKUClassic {
	dsn := os.Getenv("ORDO_BENCH_POSTGRES_DSN")
	where := "$ORDO_BENCH_POSTGRES_DSN"
	var serverCPU func() time.Duration // nil for a server this bench did not start
	if dsn == "" {
		var stop func()
		var err error
		if dsn, serverCPU, stop, err = startPostgres(ctx, max(100, o.clients+20)); err != nil {
			return hotSKUClassic{Skipped: err.Error()}
		}
		defer stop()
		where = "a throwaway cluster on loopback"
	}
	conns := make([]*pgx.Conn, o.clients)
	for i := range conns {
		cctx, cancel := context.WithTimeout(ctx, hotSKURequestTimeout)
		c, err := pgx.Connect(cctx, dsn)
		cancel()
		if err != nil {
			return hotSKUClassic{Skipped: fmt.Sprintf("connect %d clients to PostgreSQL: %v", o.clients, err)}
		}
		conns[i] = c
		defer c.Close(context.WithoutCancel(ctx))
	}
	table := "ordo_bench_stock_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	setup, err := preparePostgres(ctx, conns[0], table, sku)
	if err != nil {
		return hotSKUClassic{Skipped: "prepare PostgreSQL: " + err.Error()}
	}
	defer conns[0].Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+table)
	update := "UPDATE " + table + " SET qty = qty - $1 WHERE sku = $2 AND qty >= $1"
	var ok atomic.Int64
	var pgCPU time.Duration
	if serverCPU != nil {
		pgCPU = serverCPU()
	}
	clientCPU := processCPU()
	res, _ := ordonats.RunLoad(ctx, o.clients, o.duration, func(_ context.Context, c, _ int) error {
		rctx, cancel := context.WithTimeout(ctx, hotSKURequestTimeout)
		defer cancel()
		tag, err := conns[c].Exec(rctx, update, int64(1), sku)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return errSoldOut
		}
		ok.Add(1)
		return nil
	})
	clientCPU = processCPU() - clientCPU
	out := hotSKUClassic{Setup: setup + " (" + where + ")", Result: &res}
	if serverCPU != nil && res.Ops > 0 {
		out.ServerCPUPerOp, out.ClientCPUPerOp = (serverCPU()-pgCPU)/time.Duration(res.Ops), clientCPU/time.Duration(res.Ops)
	}
	var left int64
	err = conns[0].QueryRow(ctx, "SELECT qty FROM "+table+" WHERE sku = $1", sku).Scan(&left)
	out.CheckOK = err == nil && left == hotSKUStock-ok.Load()
	out.Check = fmt.Sprintf("qty %d (err %v) after %d successful reservations of %d units", left, err, ok.Load(), int64(hotSKUStock))
	if out.CheckOK {
		out.Check = fmt.Sprintf("qty fell by exactly the %d successful reservations", ok.Load())
	}
	return out
}

// preparePostgres creates the one-row table and reports the server's
// durability settings, refusing to measure without them.
func preparePostgres(ctx context.Context, c *pgx.Conn, table, sku string) (string, error) {
	var version, syncCommit, fsync string
	for q, dst := range map[string]*string{"SHOW server_version": &version, "SHOW synchronous_commit": &syncCommit, "SHOW fsync": &fsync} {
		if err := c.QueryRow(ctx, q).Scan(dst); err != nil {
			return "", err
		}
	}
	if syncCommit != "on" || fsync != "on" {
		return "", fmt.Errorf("synchronous_commit is %s and fsync %s; both must be on for a durable comparison", syncCommit, fsync)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE "+table+" (sku text PRIMARY KEY, qty bigint NOT NULL CHECK (qty >= 0))"); err != nil {
		return "", err
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+table+" (sku, qty) VALUES ($1, $2)", sku, int64(hotSKUStock)); err != nil {
		return "", err
	}
	return "PostgreSQL " + version + ", synchronous_commit on, fsync on, conditional UPDATE of one row", nil
}

// startPostgres starts a throwaway cluster as .ci/postgres.sh does: initdb
// in a temporary directory, trust on loopback, run as the postgres user
// when root. It returns the DSN, the CPU time the cluster's processes have
// used so far (see clusterCPU), and a function that stops and removes it.
func startPostgres(ctx context.Context, maxConns int) (dsn string, cpu func() time.Duration, stop func(), err error) {
	bin := postgresBinDir()
	if bin == "" {
		return "", nil, nil, errors.New("PostgreSQL is not installed: no initdb on PATH or in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")
	}
	asOwner, chown, err := postgresOwner()
	if err != nil {
		return "", nil, nil, err
	}
	dir, err := os.MkdirTemp("", "ordo-bench-pg-")
	if err != nil {
		return "", nil, nil, err
	}
	if err := chown(dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	steps := [][]string{
		{filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"},
		{filepath.Join(bin, "pg_ctl"), "-D", dir, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o",
			fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=%d -c synchronous_commit=on -c fsync=on", port, dir, maxConns), "start"},
	}
	stop = func() {
		_ = asOwner(context.Background(), filepath.Join(bin, "pg_ctl"), "-D", dir, "-m", "fast", "-w", "-t", "30", "stop").Run()
		os.RemoveAll(dir)
	}
	for _, s := range steps {
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		out, err := asOwner(sctx, s[0], s[1:]...).CombinedOutput()
		cancel()
		if err != nil {
			stop()
			return "", nil, nil, fmt.Errorf("PostgreSQL did not start: %s: %v: %s", filepath.Base(s[0]), err, lastLines(string(out), 3))
		}
	}
	cpu = func() time.Duration { return clusterCPU(filepath.Join(dir, "postmaster.pid")) }
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), cpu, stop, nil
}

// clusterCPU is the CPU time used by a PostgreSQL cluster: its postmaster
// (named by the first line of pidFile), the children it reaped, and the
// children still running (backends, background workers). 0 where /proc
// cannot be read.
func clusterCPU(pidFile string) time.Duration {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0
	}
	total := procCPU(pm, true)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pm {
			continue
		}
		if f := procStat(pid); len(f) > 12 && f[1] == strconv.Itoa(pm) {
			total += procCPU(pid, false)
		}
	}
	return total
}

// postgresBinDir finds initdb and pg_ctl: on PATH, or in the newest
// /usr/lib/postgresql/<version>/bin.
func postgresBinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(real), "pg_ctl")); err == nil {
				return filepath.Dir(real)
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// postgresOwner returns how to run a PostgreSQL program as the cluster's
// owner (initdb and postgres refuse root: root hands over to "postgres")
// and how to give it the data directory.
func postgresOwner() (run func(ctx context.Context, name string, args ...string) *exec.Cmd, chown func(string) error, err error) {
	direct := func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, name, args...)
	}
	if os.Geteuid() != 0 {
		return direct, func(string) error { return nil }, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, errors.New("running as root and there is no postgres user to run PostgreSQL as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		return nil, nil, errors.New("running as root and runuser is not installed to run PostgreSQL as the postgres user")
	}
	run = func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, runuser, append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return run, func(dir string) error { return os.Chown(dir, uid, gid) }, nil
}

// ---- helpers ----

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls probe until it succeeds or limit passes.
func waitFor(ctx context.Context, limit time.Duration, probe func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %s: %w", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopProcess asks a child to stop, and kills it after 10 seconds.
func stopProcess(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// loadAverage is the 1-minute load average (0 where /proc/loadavg is missing).
func loadAverage() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// ---- output ----

func printHotSKU(w io.Writer, rep hotSKUReport) {
	fmt.Fprintf(w, "hot SKU %s: %d clients, %s each, 1 unit per reservation, %d units stocked\n\n", rep.SKU, rep.Clients, rep.Duration, int64(hotSKUStock))
	line := func(name string, r ordonats.LoadResult) {
		fmt.Fprintf(w, "%-34s %9.0f/s  p50 %9s  p99 %9s  (%d ok, %d errors)\n", name, r.PerSec, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Ops, r.Errors)
	}
	o := rep.Ordo
	line("ordo stock API (durable)", o.LoadResult)
	fmt.Fprintf(w, "  %.1f cpu-µs per reservation (this whole process), load average %.2f\n", float64(o.CPUPerOp.Nanoseconds())/1e3, o.LoadAvg)
	c := o.Check
	switch {
	case c.OK:
		fmt.Fprintf(w, "  zero oversell: ok, reserved %d = successful reservations %d, available %d = on hand %d - reserved\n",
			c.Stock.Reserved, c.Successes, c.Stock.Available, c.Stock.OnHand)
	default:
		fmt.Fprintf(w, "  zero oversell: FAILED: %s\n", strings.Join(c.Problems, "; "))
	}
	if c.Folded {
		fmt.Fprintf(w, "  stream %s replays through the domain: %d reservations, revision %d\n", domain.StockStream(rep.SKU), c.Reserved, c.FoldedView.Revision)
		if c.Appends > 0 {
			fmt.Fprintf(w, "  %d durable appends carried them: %.1f reservations per append, one every %s\n",
				c.Appends, float64(c.Reserved)/float64(c.Appends), (o.Duration / time.Duration(c.Appends)).Round(time.Microsecond))
		}
	} else if c.FoldSkip != "" {
		fmt.Fprintf(w, "  stream replay skipped: %s\n", c.FoldSkip)
	}
	if o.Ambiguous > 0 {
		fmt.Fprintf(w, "  %d reservations got no outcome after %d attempts\n", o.Ambiguous, hotSKUAttempts)
	}
	if rep.Bare != nil {
		line("bare NATS request-reply", *rep.Bare)
	}
	for _, cl := range []struct {
		name string
		c    hotSKUClassic
	}{{"redis + lua (appendfsync always)", rep.Redis}, {"postgresql (synchronous_commit on)", rep.Postgres}} {
		if cl.c.Result == nil {
			fmt.Fprintf(w, "%-34s skipped: %s\n", cl.name, cl.c.Skipped)
			continue
		}
		line(cl.name, *cl.c.Result)
		if cl.c.ServerCPUPerOp > 0 {
			fmt.Fprintf(w, "  %.1f cpu-µs per reservation (server %.1f, this process's clients %.1f)\n",
				float64((cl.c.ServerCPUPerOp+cl.c.ClientCPUPerOp).Nanoseconds())/1e3,
				float64(cl.c.ServerCPUPerOp.Nanoseconds())/1e3, float64(cl.c.ClientCPUPerOp.Nanoseconds())/1e3)
		}
		fmt.Fprintf(w, "  %s; check: %s\n", cl.c.Setup, cl.c.Check)
	}
	fmt.Fprintln(w)
	for _, r := range []struct{ key, name string }{
		{"ordo_per_redis_lua", "Ordo / Redis+Lua"}, {"ordo_per_postgres", "Ordo / PostgreSQL"}, {"ordo_per_bare_request_reply", "Ordo / bare NATS request-reply"},
	} {
		if v, ok := rep.Ratios[r.key]; ok {
			fmt.Fprintf(w, "%-34s %9.2f×\n", r.name, v)
		}
	}
}
