package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/logbuf"
)

// TestServePprof: `ordo serve --pprof` serves the profiling endpoints on
// their own loopback listener, and the service's HTTP API does not carry
// them.
func TestServePprof(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out logbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
			"--esdb-listen", "127.0.0.1:0", "--pprof", "127.0.0.1:0"}, &out, io.Discard)
	}()
	pprofLine := regexp.MustCompile(`ordo pprof: (http://\S+/debug/pprof/)`)
	serving := regexp.MustCompile(`HTTP (http://\S+)`)
	var pprofURL, apiURL string
	for pprofURL == "" || apiURL == "" {
		select {
		case err := <-done:
			t.Fatalf("ordo serve --pprof returned before serving: %v; output:\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("ordo serve --pprof did not say where it serves; output:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if m := pprofLine.FindStringSubmatch(out.String()); m != nil {
			pprofURL = m[1]
		}
		if m := serving.FindStringSubmatch(out.String()); m != nil {
			apiURL = m[1]
		}
	}
	get := func(url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(pprofURL + "goroutine?debug=1"); code != http.StatusOK || !bytes.Contains([]byte(body), []byte("goroutine profile:")) {
		t.Errorf("GET %sgoroutine?debug=1: %d, want 200 and a goroutine profile; body starts %.200q", pprofURL, code, body)
	}
	if code, body := get(pprofURL + "cmdline"); code != http.StatusOK || body == "" {
		t.Errorf("GET %scmdline: %d %q, want 200 and the command line", pprofURL, code, body)
	}
	if code, _ := get(apiURL + "/debug/pprof/"); code == http.StatusOK {
		t.Errorf("GET %s/debug/pprof/ on the service's HTTP API answered 200: the profiling endpoints must stay on their own listener", apiURL)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("ordo serve --pprof after cancel: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("ordo serve --pprof did not stop within a minute of its context's end")
	}
}

// TestPprofLoopbackOnly: --pprof refuses any address that is not loopback,
// as a usage error, before listening.
func TestPprofLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"localhost:0", true},
		{"0.0.0.0:0", false},
		{":0", false},
		{"192.0.2.1:0", false},
		{"example.com:6060", false},
		{"6060", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			addr, stop, err := startPprof(tc.addr, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				defer stop()
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("startPprof(%q): %v, want it listening", tc.addr, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("startPprof(%q) listened on %v, want a refusal: not loopback", tc.addr, addr)
			}
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("startPprof(%q): %v (%T), want a usageError", tc.addr, err, err)
			}
		})
	}
}
