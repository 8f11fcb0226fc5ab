// Package esdbserver is Ordo's embedded event store: a durable, single-node
// server that speaks the EventStoreDB gRPC protocol (Streams, persistent
// subscriptions, ServerFeatures, Gossip), so applications use the official
// EventStoreDB client against it exactly as against an EventStoreDB or
// KurrentDB cluster.
//
// Storage is the storage package (pebble, group commit). This package maps
// the wire protocol onto it, including the details the Go client depends on
// (see shared/esdb-protocol.md §0).
package esdbserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/persistent"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/projections"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	ps "github.com/ordo-dev/ordo/eventstore/esdbserver/persistent"
	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// DefaultMaxAppendSize is EventStoreDB's default limit on one append.
const DefaultMaxAppendSize = 1 << 20

// maxMessageSize allows single events up to EventStoreDB's record cap.
const maxMessageSize = 17 << 20

// streamWorkers is the size of the pool of goroutines serving calls: as
// many as concurrent appends commonly wait for one fsync.
const streamWorkers = 128

// Config configures a Server.
type Config struct {
	DataDir       string       // where the log lives; required
	Listen        string       // e.g. "127.0.0.1:2113"; port 0 picks a free one
	MaxAppendSize int          // bytes of event data per append; default 1 MiB
	Logger        *slog.Logger // nil discards
	// OnCommit observes the storage's group commits (storage.Options.OnCommit).
	OnCommit func(storage.Commit)
	// TLS, when set, serves over TLS (clients connect with ?tls=true).
	TLS *tls.Config
	// TLSCAFile is the CA file clients verify the certificate with, put
	// into URL as tlsCAFile (optional).
	TLSCAFile string
	// Auth, when set, checks the credentials of every call (auth.go).
	Auth *Auth
	// Insecure allows listening beyond loopback without Auth and TLS.
	Insecure bool
}

// Server is a running embedded event store.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *storage.Store
	subs  *ps.Manager // persistent subscriptions
	grpc  *grpc.Server
	http  *http.Server // answers HTTP/1.x requests on the same port (http1.go)
	lis   net.Listener
	done  chan error
}

// Start opens the store, binds the listener and serves in the background.
// The listener is bound before Start returns, so Addr is usable at once.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("esdbserver: DataDir is required: the event store never runs from a temporary directory")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:2113"
	}
	if cfg.MaxAppendSize <= 0 {
		cfg.MaxAppendSize = DefaultMaxAppendSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckListen(cfg.Listen, cfg.Auth, cfg.TLS != nil, cfg.Insecure); err != nil {
		return nil, err
	}
	st, err := storage.Open(cfg.DataDir, storage.Options{Logger: cfg.Logger, OnCommit: cfg.OnCommit})
	if err != nil {
		return nil, err
	}
	subs, err := ps.Start(ctx, st, ps.Options{Logger: cfg.Logger.With("component", "persistent-subscriptions")})
	if err != nil {
		st.Close()
		return nil, err
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		subs.Close()
		st.Close()
		return nil, fmt.Errorf("event store listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, subs: subs, lis: lis, done: make(chan error, 1)}
	s.grpc = grpc.NewServer(append(securityOptions(cfg),
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		// The client pings every 10 s, also without active streams; grpc-go's
		// default policy would answer with GOAWAY and drop subscriptions.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Write buffers shared across calls cut per-append allocations.
		grpc.SharedWriteBuffer(true),
		// Events of reads and subscriptions go out pre-encoded (encode.go).
		grpc.ForceServerCodecV2(newPassThroughCodec()),
		// Every append is a call of its own, and a fresh goroutine per call
		// grows its stack on each one; a pool of workers keeps its grown
		// stacks. When all are busy (appends wait for their fsync), grpc
		// starts a goroutine per call.
		grpc.NumStreamWorkers(streamWorkers),
		// Static receive windows: grpc-go otherwise estimates the
		// bandwidth-delay product with a PING per burst of received data,
		// extra frames on every append's round trip.
		grpc.InitialWindowSize(1<<20),
		grpc.InitialConnWindowSize(16<<20),
	)...)
	streams.RegisterStreamsServer(s.grpc, &streamsService{srv: s})
	serverfeatures.RegisterServerFeaturesServer(s.grpc, &featuresService{})
	gossip.RegisterGossipServer(s.grpc, &gossipService{srv: s, id: uuid.New()})
	persistent.RegisterPersistentSubscriptionsServer(s.grpc, &persistentService{srv: s, mgr: subs})
	projections.RegisterProjectionsServer(s.grpc, projections.UnimplementedProjectionsServer{})
	mux := newConnMux(tlsListener(lis, cfg))
	s.http = newHTTP1Server()
	go func() { s.done <- s.grpc.Serve(mux.grpc) }()
	go func() { _ = s.http.Serve(mux.http) }()
	go mux.serve()
	s.log.Info("event store listening", "addr", lis.Addr().String(), "data", cfg.DataDir)
	return s, nil
}

// WriteStats reports the store's group commits (see storage.WriteStats).
func (s *Server) WriteStats() storage.WriteStats { return s.store.WriteStats() }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// URL is the connection string for the official client.
//
// nodePreference=random: a single host without +discover is never looked
// up through gossip, so the preference chooses nothing here; but with the
// default (leader) the Go client v4.2.0 builds a metadata map and a context
// for every call (a "requires-leader" header it then never sends,
// esdb/options.go:53-56): garbage on every append for nothing.
func (s *Server) URL() string {
	if s.cfg.TLS != nil {
		u := "esdb://" + s.lis.Addr().String() + "?tls=true&nodePreference=random"
		if s.cfg.TLSCAFile != "" {
			u += "&tlsCAFile=" + url.QueryEscape(s.cfg.TLSCAFile)
		}
		return u
	}
	return "esdb://" + s.lis.Addr().String() + "?tls=false&nodePreference=random"
}

// Close stops the server: new calls are refused, running calls get up to
// five seconds to finish (subscriptions are ended), then the store closes.
func (s *Server) Close() error {
	_ = s.http.Close()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	// Subscriptions never finish by themselves: stopping the persistent
	// subscription groups and closing the store ends them.
	time.AfterFunc(100*time.Millisecond, func() {
		select {
		case <-stopped:
		default:
			s.subs.Close()
			s.store.Close()
		}
	})
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.grpc.Stop()
		<-stopped
	}
	s.subs.Close()
	return s.store.Close()
}
