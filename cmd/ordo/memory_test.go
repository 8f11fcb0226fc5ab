package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"2GiB", 2 << 30, false},
		{"512MiB", 512 << 20, false},
		{"64KiB", 64 << 10, false},
		{"1TiB", 1 << 40, false},
		{"1000B", 1000, false},
		{"123456", 123456, false},
		{"off", math.MaxInt64, false},
		{"", 0, true},
		{"-1GiB", 0, true},
		{"2GB", 0, true}, // GOMEMLIMIT has no decimal units
		{"9999999TiB", 0, true},
	} {
		got, err := parseByteSize(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestApplyMemoryLimit: the flag wins over GOMEMLIMIT, GOMEMLIMIT is left
// as the runtime applied it, and otherwise three quarters of the memory
// available (never less than the floor) become the limit.
func TestApplyMemoryLimit(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	const sentinel = 5 << 40 // a limit nothing here sets
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(sentinel))
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMEMLIMIT" {
				return v
			}
			return ""
		}
	}
	mem := func(n int64) func() (int64, string) { return func() (int64, string) { return n, "test" } }
	for _, tc := range []struct {
		name      string
		flag      memoryLimit
		env       string
		available int64
		want      int64
	}{
		{"flag", memoryLimit{set: true, bytes: 300 << 20}, "", 8 << 30, 300 << 20},
		{"flag beats GOMEMLIMIT", memoryLimit{set: true, bytes: 300 << 20}, "1GiB", 8 << 30, 300 << 20},
		{"flag off", memoryLimit{set: true, bytes: math.MaxInt64}, "", 8 << 30, math.MaxInt64},
		{"GOMEMLIMIT is left alone", memoryLimit{}, "1GiB", 8 << 30, sentinel},
		{"default: 3/4 of 8 GiB", memoryLimit{}, "", 8 << 30, 6 << 30},
		{"default floor", memoryLimit{}, "", 100 << 20, minMemoryLimit},
		{"memory unknown", memoryLimit{}, "", 0, sentinel},
	} {
		restore := applyMemoryLimit(tc.flag, env(tc.env), mem(tc.available), log)
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("%s: limit %d, want %d", tc.name, got, tc.want)
		}
		restore()
		if got := debug.SetMemoryLimit(-1); got != sentinel {
			t.Errorf("%s: restore left %d, want %d", tc.name, got, int64(sentinel))
		}
	}
	if n, from := availableMemory(); n <= 0 || from == "" {
		t.Logf("available memory unknown here (%d, %q)", n, from)
	}
}

// TestEventstoreServeMemoryLimit: ordo eventstore serve applies
// --memory-limit while it runs and restores the previous limit on exit.
func TestEventstoreServeMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"eventstore", "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--memory-limit", "300MiB"}, w, io.Discard)
		w.Close()
	}()
	line := make([]byte, 256)
	if n, err := out.Read(line); err != nil || !strings.HasPrefix(string(line[:n]), "esdb://") {
		t.Fatalf("serve printed %q, %v", line[:n], err)
	}
	go io.Copy(io.Discard, out)
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("while serving: memory limit %d, want %d (300MiB)", got, 300<<20)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after serve: memory limit %d, want it restored to off", got)
	}
}
