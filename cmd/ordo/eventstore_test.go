package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/eventstore"
)

// TestEventstoreServe runs `ordo eventstore serve`, appends and reads through
// the adapter, then cancels as SIGINT would and expects a clean exit.
func TestEventstoreServe(t *testing.T) {
	url, stop := startEventstoreServe(t)
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	store, err := eventstore.Connect(cctx, url)
	if err != nil {
		t.Fatalf("connect to %q: %v", url, err)
	}
	defer store.Close()
	if _, err := store.Append(cctx, "cli-test", eventstore.NoStream(), eventstore.EventData{Type: "Hello", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := store.ReadStream(cctx, "cli-test", 0, func(e eventstore.RecordedEvent) error { got = append(got, e.Type); return nil }); err != nil || len(got) != 1 {
		t.Fatalf("read back %v, %v", got, err)
	}
	stop()
}

// startEventstoreServe runs `ordo eventstore serve --listen 127.0.0.1:0
// --data <a temporary directory>` with args in the background and returns
// the URL it printed, and stop, which cancels it as SIGINT would and fails
// the test unless it exits cleanly within 15 s.
func startEventstoreServe(t *testing.T, args ...string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"eventstore", "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, args...), w, io.Discard)
		w.Close()
	}()
	line := make([]byte, 1024)
	n, err := out.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	return strings.TrimSpace(string(line[:n])), func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve returned %v after cancel, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop after cancel")
		}
	}
}

func TestEventstoreUsage(t *testing.T) {
	err := run(context.Background(), []string{"eventstore"}, io.Discard, io.Discard)
	if _, ok := err.(usageError); !ok {
		t.Fatalf("ordo eventstore without serve: got %v, want a usage error", err)
	}
}
