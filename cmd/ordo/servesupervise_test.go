package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ordonats "github.com/ordo-dev/ordo/nats"
)

// TestServeExitsWhenAPartCannotGoOn runs `ordo serve` against an external
// NATS and takes its command stream's subjects away for good (another
// stream holds them): the command workers cannot set their stream up again
// however often they are restarted, while NATS and the event store answer.
// After --give-up-after the process exits non-zero, naming the part and the
// cause, instead of serving on half dead.
func TestServeExitsWhenAPartCannotGoOn(t *testing.T) {
	dir := t.TempDir()
	ns, err := ordonats.StartEmbedded(t.Context(), ordonats.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	httpAddr := freeAddr(t)
	child := startServe(t, dir, []string{"serve", "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--esdb-listen", freeAddr(t),
		"--nats-url", ns.ClientURL(), "--give-up-after", "3s"})
	waitReady(t, httpAddr, 60*time.Second)
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	nc, err := natsgo.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, ordonats.StreamCommands); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{ordonats.SubjectCommands}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("ordo serve ended with %v; want exit status 1", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("ordo serve still running 90 s after its workers lost their stream for good")
	}
	log, err := os.ReadFile(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	last := lastLine(string(log))
	if !strings.HasPrefix(last, "ordo: serve stopped: workers: ") || !strings.Contains(last, "subjects overlap") {
		t.Fatalf("last line of the output: %q; want the part and the cause", last)
	}
	t.Log(last)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
