package main

import (
	"os"
	"runtime/debug"
)

// relaxedGCPercent is the garbage collector's target for ordo's long passes
// (verify, replay) and its services (serve, eventstore serve; ordo-bench
// sets the same, since it measures what serve runs). All of them allocate a
// few KB per event or command, mostly in gRPC and the official client's
// protobuf decoding, and keep little, so at Go's default of 100 the
// collector runs every few thousand events and costs a noticeable share of
// the CPU per event, command and append; BENCHMARKS.md ("Figures behind
// choices in the code") has the measurements.
//
// The price is memory: the heap may grow to five times the live data
// instead of twice. GOGC in the environment (and GOMEMLIMIT, which Go reads
// itself) always wins.
const relaxedGCPercent = 400

// relaxGC sets relaxedGCPercent unless GOGC is set in the environment, and
// returns the function that restores the previous setting.
func relaxGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(relaxedGCPercent)
	return func() { debug.SetGCPercent(old) }
}
