// Package serve wires Ordo's parts into the running service: embedded (or
// external) NATS and event store, the command workers, the order query
// responder, the read-model projection and the HTTP API. `ordo serve` and the end-to-end
// tests start the service through Start, so tests run what users run.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordo-dev/ordo/callbacksig"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/datadir"
	ordonats "github.com/ordo-dev/ordo/nats"
	"github.com/ordo-dev/ordo/projections"
)

// Config configures the service. Empty URLs mean "start the embedded server".
type Config struct {
	DataDir    string // default ./ordo-data
	HTTPAddr   string // default 127.0.0.1:8080
	NATSListen string // embedded NATS; default 127.0.0.1:4222
	ESDBListen string // embedded event store; default 127.0.0.1:2113
	NATSURL    string // external NATS instead of the embedded one
	ESDBURL    string // external EventStoreDB instead of the embedded one
	// ReadModelDSN puts the read models in PostgreSQL (postgres://…)
	// instead of SQLite files in DataDir.
	ReadModelDSN string
	Logger       *slog.Logger
	Commands     ordonats.WorkerConfig // stream sizes, shards, redelivery
	// PaymentTimeout is how long an order may await payment before the
	// saga's timer cancels it and releases its stock (default 15 minutes).
	PaymentTimeout time.Duration
	// ManualStock: another system manages stock and sends MarkStockReserved
	// or MarkStockRejected itself; the saga does not reserve.
	ManualStock bool
	// ReadWait bounds how long a query with min_position waits for the read
	// models to catch up (default 5s).
	ReadWait time.Duration
	// GiveUpAfter is how long a part may keep failing, while NATS and the
	// event store answer, before the service stops with its cause (see
	// supervise.go); 0 restarts it forever.
	GiveUpAfter time.Duration
	// LeaseTTL is how long a lease (the saga and stock writer's; the shared read models'
	// projections') lasts unless renewed (default 5s): a standby instance takes over within
	// about this much of the holder's death. Every instance must use the same.
	LeaseTTL time.Duration
	// TracerProvider records the commands' traces (tracing.go); nil
	// records none (`ordo serve` sets OTLPTracerProvider when
	// OTEL_EXPORTER_OTLP_ENDPOINT is set).
	TracerProvider trace.TracerProvider
	// SecretsDir holds the payment callback secrets and the admin token
	// (default DataDir/secrets; generated there when missing; secrets.go).
	SecretsDir string
	// CallbackTolerance is how old (or early) a payment callback's signed
	// timestamp may be (default 5 minutes).
	CallbackTolerance time.Duration
	// Security: NATS users, TLS, event store credentials (security.go).
	Security Security
}

// Service is the running Ordo service.
type Service struct {
	log          *slog.Logger
	natsSrv      *ordonats.EmbeddedServer
	natsURL      string
	store        *eventstore.Store
	nc           *natsgo.Conn
	querySub     *natsgo.Subscription
	sup          *supervisor
	workers      *handle // the command workers' part
	httpPart     *handle
	http         *http.Server
	httpLis      net.Listener
	httpQuerySub *natsgo.Subscription
	reads        *projections.Manager
	runtimePath  string // serve.json, removed at shutdown
	stock        *commands.StockService
	stockAPI     *commands.StockAPI // the stock as clients reach it
	stockSub     *natsgo.Subscription
	sagaRun      *handle
	leases       *ordonats.Leases
	// projectionsHolder names the instance holding leaseProjections while
	// this one stands by (nil otherwise).
	projectionsHolder atomic.Pointer[string]
	stockClient       func() (*ordonats.Client, error) // reaches the writer of the stock from a standby
	saga              *commands.Saga
	lock              *datadir.Lock        // the data directory's, released last
	rates             *commandRate         // commands answered, for the operator's page
	callbacks         callbacksig.Verifier // checks payment callbacks' signatures
	adminToken        []byte               // what /v1/admin/* requires
	metrics           *metrics             // GET /metrics (metrics.go)
	closing           atomic.Bool          // Shutdown has begun: parts stopping now are not failing
}

// Start starts every part, or nothing: on error, what was started is stopped.
func Start(ctx context.Context, cfg Config) (svc *Service, err error) {
	cfg = withDefaults(cfg)
	s := &Service{log: cfg.Logger, rates: newCommandRate(time.Now), metrics: newMetrics()}
	defer func() {
		if err != nil {
			s.Shutdown(context.Background())
		}
	}()
	if err := s.lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := s.loadSecrets(cfg); err != nil {
		return nil, err
	}
	if err := s.startNATS(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.startStore(ctx, cfg); err != nil {
		return nil, err
	}
	s.startSupervisor(cfg)
	tracer := tracerOf(cfg.TracerProvider)
	cmdSvc := commands.New(CommandStore{Store: s.store, Tracer: tracer}, commands.Options{Logger: cfg.Logger, Tracer: otelTracer{tracer}})
	cfg.Commands.Logger, cfg.Commands.Callbacks = cfg.Logger, s.callbacks
	cfg.Commands.Observer, cfg.Commands.TracerProvider = s.metrics, cfg.TracerProvider
	// Instances started together on a fresh cluster wait for its streams
	// and buckets as long as a failing part may go on: a NATS still
	// forming is waited out, not a reason to exit.
	cfg.Commands.StartupLog = cfg.Logger
	if cfg.Commands.StartupWait == 0 {
		cfg.Commands.StartupWait = cfg.GiveUpAfter
		if cfg.GiveUpAfter == 0 {
			cfg.Commands.StartupWait = -1 // --give-up-after 0: wait as long as it takes
		}
	}
	if err := ordonats.EnsureStreams(ctx, mustJS(s.nc), cfg.Commands.Config); err != nil {
		return nil, err
	}
	if err := s.startWorkers(ctx, cfg, countingExecutor{executor{svc: cmdSvc, log: cfg.Logger, sagaStock: !cfg.ManualStock}, s.rates}); err != nil {
		return nil, err
	}
	if s.querySub, err = ordonats.ServeOrderQueries(s.nc, cmdSvc, cfg.Logger); err != nil {
		return nil, fmt.Errorf("serve order queries: %w", err)
	}
	if err := s.startStockAndSaga(ctx, cfg, cmdSvc); err != nil {
		return nil, err
	}
	if err := s.startProjections(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.startHTTP(ctx, cfg); err != nil {
		return nil, err
	}
	if err := s.writeRuntime(cfg.DataDir); err != nil {
		// Tools then find the directory locked and say so; a full disk
		// must not keep the service from starting.
		s.log.Warn("operator tools will not find this service: writing serve.json failed", "err", err)
	}
	s.log.Info("ordo is serving", "nats", s.natsURL, "esdb", s.store.URL(), "http", s.HTTPAddr())
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.DataDir == "" {
		cfg.DataDir = "./ordo-data"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if cfg.NATSListen == "" {
		cfg.NATSListen = "127.0.0.1:4222"
	}
	if cfg.ESDBListen == "" {
		cfg.ESDBListen = "127.0.0.1:2113"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SecretsDir == "" {
		cfg.SecretsDir = SecretsDir(cfg.DataDir)
	}
	if cfg.CallbackTolerance <= 0 {
		cfg.CallbackTolerance = callbacksig.DefaultTolerance
	}
	return cfg
}

// lockDataDir creates the data directory and takes its lock, before any
// part opens a file in it: a second service or tool on the same directory
// fails at once, naming this process.
func (s *Service) lockDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory %s: %w", dir, err)
	}
	lock, err := datadir.Acquire(dir)
	if err != nil {
		return err
	}
	s.lock = lock
	return nil
}

// How often the connection to an external NATS is pinged, and how many
// pings may go unanswered before the client drops it and reconnects to
// another node: a partitioned node is left within about their product.
const (
	natsPingInterval = 2 * time.Second
	natsMaxPingsOut  = 3
)

func (s *Service) startNATS(ctx context.Context, cfg Config) error {
	opts := append([]natsgo.Option{natsgo.Name("ordo"), natsgo.MaxReconnects(-1)}, newNATSOutage(cfg.Logger).options()...)
	s.natsURL = cfg.NATSURL
	if s.natsURL == "" {
		srv, err := ordonats.StartEmbedded(ctx, cfg.Security.embeddedNATS(ordonats.EmbeddedConfig{
			StoreDir: filepath.Join(cfg.DataDir, "nats"), Listen: cfg.NATSListen, Logger: cfg.Logger}))
		if err != nil {
			return err
		}
		s.natsSrv, s.natsURL = srv, srv.ClientURL()
		opts = append(opts, srv.ServiceOptions()...)
	} else {
		opts = append(opts, cfg.Security.NATSConnect...)
		// A node cut off the network leaves the connection to it open
		// with nothing coming through: only missed pings tell, and at the
		// client's default (every 2 minutes, 2 missed) every request would
		// time out for minutes before the client moved to another node of
		// the cluster.
		opts = append(opts, natsgo.PingInterval(natsPingInterval), natsgo.MaxPingsOutstanding(natsMaxPingsOut))
	}
	nc, err := natsgo.Connect(s.natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", s.natsURL, err)
	}
	s.nc = nc
	return nil
}

// startStore connects to the external event store through the official
// client (which survives its outages: operations fail with unavailable
// meanwhile), or opens the embedded one in this process: the service calls
// its storage directly, and its gRPC server listens on ESDBListen for the
// replay CLI and other services.
func (s *Service) startStore(ctx context.Context, cfg Config) error {
	var err error
	if cfg.ESDBURL != "" {
		s.store, err = eventstore.Connect(ctx, cfg.ESDBURL, eventstore.WithLogger(cfg.Logger))
	} else {
		s.store, err = eventstore.OpenEmbedded(ctx, cfg.Security.embeddedStore(eventstore.EmbeddedConfig{
			DataDir: filepath.Join(cfg.DataDir, "eventstore"), Listen: cfg.ESDBListen, Logger: cfg.Logger,
			OnCommit: s.metrics.onCommit}))
	}
	return err
}

// startProjections opens the read models (SQLite files in the data
// directory, or a PostgreSQL database) and keeps them up to date in the
// background: all along, or while this instance holds leaseProjections
// (see projectionsGate).
func (s *Service) startProjections(ctx context.Context, cfg Config) error {
	src := ProjectionSource{Store: s.store, Tracer: tracerOf(cfg.TracerProvider)}
	m, err := projections.OpenManagerConfig(ctx, projections.ManagerConfig{
		DSN: cfg.ReadModelDSN, Dir: cfg.DataDir, Source: src, Logger: cfg.Logger, Gate: s.projectionsGate(cfg)})
	if err != nil {
		return err
	}
	s.reads = m
	return s.rebuildStaleReadModels()
}

// ReadModels is the read-model manager, for rebuilds.
func (s *Service) ReadModels() *projections.Manager { return s.reads }

func (s *Service) startHTTP(ctx context.Context, cfg Config) error {
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP listen on %s: %w", cfg.HTTPAddr, err)
	}
	lis = cfg.Security.httpListener(lis)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", s.readiness)
	api := projections.NewAPI(s.reads, cfg.Logger)
	if cfg.ReadWait > 0 {
		api.MaxWait = cfg.ReadWait
	}
	api.Register(mux)
	s.registerAdmin(mux, api)
	s.registerCallbacks(mux)
	s.registerStock(mux)
	s.registerSaga(mux)
	s.registerMetrics(mux)
	if err := s.registerPage(mux, cfg); err != nil {
		lis.Close()
		return err
	}
	// The read-model queries are also answered over NATS, from the same handlers.
	queries := http.NewServeMux()
	api.Register(queries)
	s.registerStock(queries)
	s.registerSaga(queries)
	sub, err := ordonats.ServeHTTPQueries(s.nc, jsonErrors(queries), cfg.Logger)
	if err != nil {
		lis.Close()
		return fmt.Errorf("serve queries over NATS: %w", err)
	}
	s.httpQuerySub = sub
	s.httpLis = lis
	s.http = &http.Server{Handler: jsonErrors(mux), ReadHeaderTimeout: 5 * time.Second}
	s.httpPart = s.sup.run(partHTTP, func(_ context.Context, up func()) error {
		up() // the listener is bound: connections queue until Serve takes them
		return s.serveHTTP(lis)
	})
	return nil
}

// NATSURL is where clients send commands.
func (s *Service) NATSURL() string { return s.natsURL }

// ESDBURL is the event store's connection string.
func (s *Service) ESDBURL() string { return s.store.URL() }

// HTTPAddr is the HTTP listen address.
func (s *Service) HTTPAddr() string {
	if s.httpLis == nil {
		return ""
	}
	return s.httpLis.Addr().String()
}

// Shutdown stops taking commands, lets the workers answer the ones in
// flight, then stops the servers. It is safe on a partly started service.
func (s *Service) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	var errs []error
	if s.runtimePath != "" {
		_ = os.Remove(s.runtimePath)
	}
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.querySub != nil {
		_ = s.querySub.Unsubscribe()
	}
	if s.httpQuerySub != nil {
		_ = s.httpQuerySub.Unsubscribe()
	}
	if s.stockSub != nil {
		_ = s.stockSub.Drain()
	}
	if s.sagaRun != nil {
		s.sagaRun.stop()
	}
	if s.stock != nil {
		s.stock.Close()
	}
	if s.httpPart != nil {
		s.httpPart.stop()
	}
	if s.workers != nil {
		errs = append(errs, stopWithin(ctx, "the command workers did not drain", s.workers.stop))
	}
	if s.reads != nil {
		errs = append(errs, s.reads.Close())
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.natsSrv != nil {
		errs = append(errs, s.natsSrv.Shutdown(ctx))
	}
	errs = append(errs, s.lock.Unlock())
	return errors.Join(errs...)
}
