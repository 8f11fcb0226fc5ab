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
	if err := run(context.Background(), []string{"bench", "lifecycle", "--clients", "2", "--duration", "500ms", "--json"}, &out, &errOut); err != nil {
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
