package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// The process-level tests run the service in a child process (this test
// binary, re-run with an environment variable that makes the named test act
// as the child) against NATS and the event store started in the parent, so
// the child can be killed with SIGKILL while the servers and the data live on.

// parentServers starts NATS and the event store in this process, on loopback.
func parentServers(tb testing.TB, ctx context.Context, dir string) (*ordonats.EmbeddedServer, *esdbserver.Server) {
	tb.Helper()
	if os.Getenv("ORDO_NATS_URL") != "" || os.Getenv("ORDO_ESDB_URL") != "" {
		tb.Skip("runs its own servers")
	}
	ns, err := ordonats.StartEmbedded(ctx, ordonats.EmbeddedConfig{StoreDir: dir + "/nats", Listen: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Shutdown(context.Background()) })
	es, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: dir + "/esdb", Listen: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { es.Close() })
	return ns, es
}

// startChild runs test as a child with childEnv set, pointed at the
// parent's servers, with dataDir as its data directory.
func startChild(tb testing.TB, test, childEnv string, ns *ordonats.EmbeddedServer, es *esdbserver.Server, dataDir string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_NATS="+ns.ClientURL(), "CHILD_ESDB="+es.URL(), "CHILD_DIR="+dataDir)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd
}

// serveChild is the child: the service, as configured by edit, against the
// parent's servers until it is killed.
func serveChild(edit func(*serve.Config)) {
	cfg := serve.Config{DataDir: os.Getenv("CHILD_DIR"), HTTPAddr: "127.0.0.1:0",
		NATSURL: os.Getenv("CHILD_NATS"), ESDBURL: os.Getenv("CHILD_ESDB")}
	cfg.Commands.AckWait = 2 * time.Second // redeliver quickly after the kill
	edit(&cfg)
	if _, err := serve.Start(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	select {}
}
