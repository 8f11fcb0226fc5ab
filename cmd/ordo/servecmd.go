package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/cmd/relaxgc"
)

// runServe runs the Ordo service until SIGINT or SIGTERM, then drains the
// commands in flight before exiting.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("ordo serve [flags]",
		"Runs the Ordo service: the command workers behind the NATS JetStream command stream, the\n"+
			"stock service and the order saga (reservations, payment timers), the read models and the\n"+
			"HTTP and NATS query API, over the embedded (or an external) NATS and event store.\n"+
			"The garbage collector runs at GOGC=400 unless GOGC is set: about a sixth less CPU per\n"+
			"command for about twice the memory (set GOGC=100 to choose); a soft memory limit (--memory-limit,\n"+
			"GOMEMLIMIT, or 3/4 of the memory available) makes it collect earlier whenever memory runs short.\n"+
			"Prometheus metrics are at /metrics on the HTTP address; traces are exported over OTLP gRPC when\n"+
			"OTEL_EXPORTER_OTLP_ENDPOINT is set (with the other standard OTEL_EXPORTER_OTLP_* variables).",
		[]string{"ordo serve", "ordo serve --nats-url nats://nats:4222 --esdb-url 'esdb://esdb:2113?tls=false'",
			"ordo serve --nats-listen 0.0.0.0:4222 --nats-auth nats-users.json --tls-cert server.pem --tls-key server-key.pem"}, stderr)
	var cfg serve.Config
	fs.StringVar(&cfg.DataDir, "data", "./ordo-data", "data directory (JetStream and event store files)")
	fs.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:8080", "HTTP address (health endpoints)")
	fs.StringVar(&cfg.NATSListen, "nats-listen", "127.0.0.1:4222", "listen address of the embedded NATS server")
	fs.StringVar(&cfg.ESDBListen, "esdb-listen", "127.0.0.1:2113", "listen address of the embedded event store")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS URL (default: run NATS embedded)")
	fs.StringVar(&cfg.ESDBURL, "esdb-url", "", "external EventStoreDB URL, esdb://… (default: run the event store embedded)")
	fs.StringVar(&cfg.ReadModelDSN, "readmodel-dsn", "", "PostgreSQL for the read models, postgres://… (default: SQLite files in --data)")
	fs.DurationVar(&cfg.PaymentTimeout, "payment-timeout", 15*time.Minute, "how long an order may await payment before it is cancelled and its stock released")
	fs.BoolVar(&cfg.ManualStock, "manual-stock", false, "stock is managed elsewhere: it sends MarkStockReserved/MarkStockRejected (ordo order stock-reserved) and Ordo does not reserve")
	fs.DurationVar(&cfg.ReadWait, "read-wait", 5*time.Second, "how long a query with min_position waits for the read models")
	fs.DurationVar(&cfg.GiveUpAfter, "give-up-after", time.Minute, "how long a part of the service (the command workers, the saga, …) may keep failing while NATS and the event store answer before the service exits with its cause, and how long the start waits for NATS JetStream to create its streams and buckets; 0: restart it forever, wait as long as it takes")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 5*time.Second, "how long the leases (the saga and stock writer; the projections, on shared PostgreSQL read models) last unless renewed; a standby instance takes over within about this much of the holder's death (the same on every instance)")
	fs.IntVar(&cfg.Commands.Replicas, "nats-replicas", 1, "replicas of Ordo's JetStream streams and key-value buckets (3 on a NATS cluster)")
	fs.StringVar(&cfg.SecretsDir, "secrets", "", "directory of the payment callback secrets (callback-<provider>) and the admin token (admin-token); what is missing is generated (default: <data>/secrets)")
	fs.DurationVar(&cfg.CallbackTolerance, "callback-tolerance", 5*time.Minute, "how far a payment callback's signed timestamp may be from now")
	pprofAddr := fs.String("pprof", "", "serve Go's profiling endpoints (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060 (default: off)")
	var logs logFlags
	logs.register(fs)
	secFlags := addSecurityFlags(fs)
	var mem memoryLimit
	fs.Var(&mem, "memory-limit", "soft memory limit of the process, e.g. 2GiB, or off (default: GOMEMLIMIT if set, else 3/4 of the machine's or container's memory)")
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	if cfg.PaymentTimeout <= 0 {
		return usageError{fmt.Sprintf("--payment-timeout must be a positive duration such as 15m, got %v", cfg.PaymentTimeout)}
	}
	if cfg.GiveUpAfter < 0 {
		return usageError{fmt.Sprintf("--give-up-after must be 0 (never) or a positive duration such as 1m, got %v", cfg.GiveUpAfter)}
	}
	if cfg.LeaseTTL < time.Second {
		return usageError{fmt.Sprintf("--lease-ttl must be at least 1s, got %v", cfg.LeaseTTL)}
	}
	if cfg.Commands.Replicas < 1 || cfg.Commands.Replicas > 5 {
		return usageError{fmt.Sprintf("--nats-replicas must be 1 to 5, got %d", cfg.Commands.Replicas)}
	}
	if cfg.CallbackTolerance <= 0 {
		return usageError{fmt.Sprintf("--callback-tolerance must be a positive duration such as 5m, got %v", cfg.CallbackTolerance)}
	}
	if cfg.ReadWait <= 0 {
		return usageError{fmt.Sprintf("--read-wait must be a positive duration such as 5s, got %v", cfg.ReadWait)}
	}
	if cfg.Security, err = secFlags.security(); err != nil {
		return err
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	cfg.Logger = log
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		tp, err := serve.OTLPTracerProvider(ctx)
		if err != nil {
			return err
		}
		defer flushTraces(tp, cfg.Logger)
		cfg.TracerProvider = tp
	}
	defer relaxgc.Set()()
	defer applyMemoryLimit(mem, os.Getenv, availableMemory, cfg.Logger)()
	if *pprofAddr != "" {
		addr, stop, err := startPprof(*pprofAddr, cfg.Logger)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stdout, "ordo pprof: http://%s/debug/pprof/\n", addr)
	}
	svc, err := serve.Start(ctx, cfg)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.Security.TLS != nil {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "ordo is serving: NATS %s, event store %s, HTTP %s://%s\n", svc.NATSURL(), svc.ESDBURL(), scheme, svc.HTTPAddr())
	select {
	case <-ctx.Done():
		cfg.Logger.Info("shutting down: draining commands in flight")
	case <-svc.Failed():
		cfg.Logger.Error("shutting down: a part of the service cannot go on", "err", svc.Err())
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = svc.Shutdown(sctx)
	if cause := svc.Err(); cause != nil {
		// Exit non-zero with the cause, so the supervisor outside restarts
		// the service and its log says why.
		return fmt.Errorf("serve stopped: %w", errors.Join(cause, err))
	}
	return err
}

// flushTraces sends the spans still batched before the process exits.
func flushTraces(tp interface{ Shutdown(context.Context) error }, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("flushing traces to the OTLP endpoint failed", "err", err)
	}
}
