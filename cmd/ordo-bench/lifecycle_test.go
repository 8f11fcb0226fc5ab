package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchLifecycle runs the load generator briefly against its own
// embedded service: both measurements must complete operations without errors.
func TestBenchLifecycle(t *testing.T) {
	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"lifecycle", "--clients", "2", "--duration", "500ms", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var res struct {
		Lifecycle struct{ Ops, Errors int } `json:"lifecycle"`
		Bare      struct{ Ops, Errors int } `json:"bare_round_trip"`
		Ratio     float64                   `json:"ratio"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if res.Lifecycle.Ops == 0 || res.Bare.Ops == 0 || res.Lifecycle.Errors != 0 || res.Ratio <= 0 {
		t.Fatalf("bench results %+v", res)
	}
}

// TestUsage: no workload or an unknown one is a usage error (exit 2); -h
// prints the usage and exits 0.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		exit int
	}{{nil, 2}, {[]string{"bench"}, 2}, {[]string{"-h"}, 0}, {[]string{"lifecycle", "extra"}, 2}, {[]string{"hot-sku", "--clients", "0"}, 2}} {
		var out, errOut strings.Builder
		err := run(context.Background(), tc.args, &out, &errOut)
		if got := exitCode(err, &errOut); got != tc.exit {
			t.Errorf("ordo-bench %q: exit %d (%v), want %d", tc.args, got, err, tc.exit)
		}
	}
}
