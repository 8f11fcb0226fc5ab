package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/logbuf"
)

// freePorts reserves n loopback ports and frees them for the servers of a
// cluster, whose routes must name each other's ports before they start.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lis []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lis = append(lis, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range lis {
		l.Close()
	}
	return ports
}

// clusterNode starts node i of a 3-node JetStream cluster on loopback
// whose route ports are routes.
func clusterNode(t *testing.T, i int, routes []int) *server.Server {
	t.Helper()
	var urls []string
	for _, p := range routes {
		urls = append(urls, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	opts := &server.Options{
		ServerName: fmt.Sprintf("n%d", i),
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		Cluster:    server.ClusterOpts{Name: "ordo-test", Host: "127.0.0.1", Port: routes[i]},
		Routes:     server.RoutesFromStr(strings.Join(urls, ",")),
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatalf("node %d did not accept connections", i)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestStartupWaitsForClusterToForm: two instances start together against
// a 3-node cluster of which one node is still missing, with 3 replicas.
// Neither can create the streams, buckets and consumer until the third
// node joins; both say what they wait for, and both succeed once it is
// there, instead of failing as they did when the cluster was still
// forming (issue 17).
func TestStartupWaitsForClusterToForm(t *testing.T) {
	routes := freePorts(t, 3)
	nodes := []*server.Server{clusterNode(t, 0, routes), clusterNode(t, 1, routes)}

	type instance struct {
		logs logbuf.Buffer
		nc   *natsgo.Conn
	}
	insts := make([]*instance, 2)
	for i := range insts {
		nc, err := natsgo.Connect(nodes[i].ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		insts[i] = &instance{nc: nc}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	errs := make([]error, len(insts))
	var wg sync.WaitGroup
	for i, in := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = startInstance(ctx, in.nc, slog.New(slog.NewTextHandler(&in.logs, nil)))
		}()
	}

	// The third node joins only once both instances are seen waiting, so
	// the test proves the wait rather than racing the cluster's election.
	deadline := time.Now().Add(2 * time.Minute)
	for _, in := range insts {
		for !strings.Contains(in.logs.String(), "starting: waiting for NATS JetStream") {
			if time.Now().After(deadline) {
				t.Fatalf("an instance never logged a wait while the cluster missed a node; its log:\n%s", in.logs.Tail(20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	clusterNode(t, 2, routes)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d did not start: %v\nits log:\n%s", i, err, insts[i].logs.Tail(20))
		}
	}
	if t.Failed() {
		return
	}
	js, err := jetstream.New(insts[0].nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{StreamCommands, StreamDeadLetter, "KV_" + BucketOutcomes, "KV_" + BucketLeases, "KV_" + BucketCheckpoints} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s after start: %v", name, err)
			continue
		}
		if got := st.CachedInfo().Config.Replicas; got != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, got)
		}
	}
}

// startInstance creates or opens every JetStream resource an instance of
// `ordo serve` needs at start, with 3 replicas, and runs the command
// workers until they consume.
func startInstance(ctx context.Context, nc *natsgo.Conn, log *slog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cfg := Config{Replicas: 3, StartupWait: 2 * time.Minute, StartupLog: log}
	if err := EnsureStreams(ctx, js, cfg); err != nil {
		return err
	}
	if _, err := OpenLeases(ctx, js, LeaseConfig{Replicas: 3, Logger: log, StartupWait: cfg.StartupWait}); err != nil {
		return err
	}
	kv, err := OpenCheckpointsConfig(ctx, js, CheckpointsConfig{Replicas: 3, StartupWait: cfg.StartupWait, StartupLog: log})
	if err != nil {
		return err
	}
	if _, err := NewCheckpoint(kv, "saga").Load(ctx); err != nil && !errors.Is(err, ErrCheckpointFenced) {
		return err
	}
	w, err := NewWorker(nc, &scripted{}, WorkerConfig{Config: cfg, Logger: log, Shards: 4})
	if err != nil {
		return err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	select {
	case <-w.Ready():
		stop()
		return <-done
	case err := <-done:
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("command workers stopped before they consumed: %v", err)
	}
}

// TestStartupConflictingConfigIsNotRetried: a stream that exists with a
// configuration EnsureStreams cannot update it to (memory storage, where
// Ordo wants files) is a real error, said at once with what to do, not
// waited on as if NATS were not ready.
func TestStartupConflictingConfigIsNotRetried(t *testing.T) {
	s := startServer(t, t.TempDir())
	js, err := jetstream.New(connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: StreamCommands, Subjects: []string{SubjectCommands}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	var logs logbuf.Buffer
	err = EnsureStreams(ctx, js, Config{StartupWait: 10 * time.Minute, StartupLog: slog.New(slog.NewTextHandler(&logs, nil))})
	if err == nil {
		t.Fatal("EnsureStreams over a memory-stored command stream: no error")
	}
	for _, want := range []string{"create stream " + StreamCommands, "another configuration", "--nats-replicas"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(logs.String(), "waiting for") {
		t.Errorf("a configuration conflict was waited on as if NATS were not ready:\n%s", logs.String())
	}
}

// TestTransientStartup: which errors of NATS mean "not ready yet".
func TestTransientStartup(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"no responders", fmt.Errorf("create: %w", natsgo.ErrNoResponders), true},
		{"request timed out", context.DeadlineExceeded, true},
		{"no meta leader", &jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{"peers still joining", &jetstream.APIError{Code: 400, ErrorCode: 10005}, true},
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: 10023}, true},
		{"created meanwhile by another instance", jetstream.ErrBucketExists, true},
		{"invalid configuration", &jetstream.APIError{Code: 500, ErrorCode: 10052}, false},
		{"bad request", &jetstream.APIError{Code: 400, ErrorCode: 10003}, false},
		{"connection closed", natsgo.ErrConnectionClosed, false},
		{"permission", errors.New("nats: permissions violation"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transientStartup(tc.err); got != tc.want {
				t.Errorf("transientStartup(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
