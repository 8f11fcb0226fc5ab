// Package nats is Ordo's NATS JetStream adapter: an embedded nats-server,
// the durable command stream with its workers, the outcome store, the
// dead-letter stream, and the client Go callers use to send commands.
//
// Wire format (also in the README): a command is published to JetStream on
// ordo.cmd.order.<order-id>.<CommandType> with its JSON body and headers
// Ordo-Command-Id (the command ID), Nats-Msg-Id (an ID of this one send),
// Ordo-Reply-To (the requester's inbox), optionally Ordo-Correlation-Id and
// Ordo-Causation-Id. The outcome is sent to the Ordo-Reply-To subject once
// the events are durable, and kept in the ORDO_OUTCOMES key-value bucket
// under the command ID.
package nats

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the embedded NATS server.
type EmbeddedConfig struct {
	StoreDir string       // JetStream file storage; required
	Listen   string       // "127.0.0.1:4222"; port 0 picks a free port
	Logger   *slog.Logger // nil discards
	// MinFreeDisk is the free space JetStream leaves on its disk: below it
	// new messages are refused (default DefaultMinFreeDisk).
	MinFreeDisk int64
	// Auth, when set, makes the server admit only its users, each with the
	// subject permissions of its role (auth.go); the service in this
	// process connects as a user of its own (ServiceOptions).
	Auth *Auth
	// Insecure allows listening beyond loopback without Auth.
	Insecure bool
	// TLS, when set, makes clients connect over TLS (tls:// URLs); with
	// ClientAuth RequireAndVerifyClientCert they must present a certificate.
	TLS *tls.Config
}

// EmbeddedServer is a nats-server with JetStream running in this process.
type EmbeddedServer struct {
	s     *server.Server
	guard *diskGuard
	svc   *serviceUser // nil without Auth
}

// StartEmbedded starts nats-server in-process with JetStream on file
// storage in cfg.StoreDir. It guards against the library's pitfalls: its
// own signal handlers (which exit the process) are off, a JetStream start
// failure is returned instead of exiting, and an empty store directory is
// refused rather than silently replaced by a temporary one.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*EmbeddedServer, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded NATS: StoreDir is required; JetStream would otherwise use a temporary directory and lose commands")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4222"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinFreeDisk <= 0 {
		cfg.MinFreeDisk = DefaultMinFreeDisk
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as "the default port 4222"
	}
	opts := &server.Options{
		ServerName: "ordo",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		MaxPayload: 8 << 20,
		// The disk guard sets the effective limit (see diskGuard).
		JetStreamMaxStore: jetStreamUnlimited,
	}
	svc, err := configureSecurity(opts, cfg, host)
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	lg := &natsLogger{l: cfg.Logger.With("component", "nats")}
	s.SetLoggerV2(lg, false, false, false)
	s.Start()
	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !s.ReadyForConnections(deadline) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not become ready on %s within %s (is the port in use?)", cfg.Listen, deadline)
	}
	if msg := lg.fatal.Load(); msg != nil || !s.JetStreamEnabled() {
		s.Shutdown()
		reason := "JetStream is not enabled"
		if msg != nil {
			reason = *msg
		}
		return nil, fmt.Errorf("embedded NATS: %s (store dir %s)", reason, cfg.StoreDir)
	}
	jsCfg := *s.JetStreamConfig()
	jsCfg.StoreDir = cfg.StoreDir // EnableJetStream adds the "jetstream" folder itself
	e := &EmbeddedServer{s: s, svc: svc, guard: newDiskGuard(s, cfg.StoreDir, cfg.MinFreeDisk, cfg.Logger.With("component", "nats"), jsCfg, &lg.enospc)}
	go e.guard.run()
	return e, nil
}

// ClientURL is the URL clients connect to.
func (e *EmbeddedServer) ClientURL() string { return e.s.ClientURL() }

// Server is the underlying nats-server, for in-process connections.
func (e *EmbeddedServer) Server() *server.Server { return e.s }

// Shutdown stops the server and waits until it has stopped or ctx ends.
func (e *EmbeddedServer) Shutdown(ctx context.Context) error {
	e.guard.close()
	done := make(chan struct{})
	go func() {
		e.s.Shutdown()
		e.s.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded NATS shutdown: %w", ctx.Err())
	}
}

// natsLogger routes nats-server logs to slog. Fatalf does not exit: it
// records the message so StartEmbedded can return it as an error.
type natsLogger struct {
	l     *slog.Logger
	fatal atomic.Pointer[string]
	// enospc is set when the server reports a store write that failed for
	// lack of space (see diskGuard).
	enospc atomic.Bool
}

func (n *natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "no space left on device") {
		n.enospc.Store(true)
	}
	n.l.Error(msg)
}
func (n *natsLogger) Debugf(format string, v ...any) {}
func (n *natsLogger) Tracef(format string, v ...any) {}
func (n *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.fatal.Store(&msg)
	n.l.Error(msg, "fatal", true)
}
