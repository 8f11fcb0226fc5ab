package main

import (
	"os"
	"runtime/debug"
)

// relaxedGCPercent is the garbage collector's target for ordo's long passes
// (verify, replay) and its services (serve, eventstore serve, and the bench,
// which measures what serve runs). All of them allocate a few KB per event
// or command, mostly in gRPC and the official client's protobuf decoding,
// and keep little, so at Go's default of 100 the collector runs every few
// thousand events:
//   - BenchmarkVerify spent 15.5 cpu-µs an event at 100, 10.9 at 400 and
//     9.9 at 800; a local replay 18.5 at 100 and 15.7 at 400;
//   - `ordo bench lifecycle --clients 64 --duration 8s --bare=false`, 4
//     alternating pairs: 463-617 (median 579) cpu-µs a command at 100,
//     453-538 (median 480) at 400, with the bench process's peak RSS 147 MB
//     against 283 MB;
//   - the event store's BenchmarkAppend at 64 writers, 6 alternating runs:
//     52-58 cpu-µs an append at 100, 45-47 at 400.
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
