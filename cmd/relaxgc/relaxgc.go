// Package relaxgc sets the garbage collector's target of Ordo's processes:
// ordo's long passes (verify, replay) and its services (serve, eventstore
// serve), and ordo-bench, which runs the service in its own process and so
// sets the same.
package relaxgc

import (
	"os"
	"runtime/debug"
)

// Percent is the garbage collector's target (GOGC). All of Ordo's
// processes allocate a few KB per event or command, mostly in gRPC and the
// official client's protobuf decoding, and keep little, so at Go's default
// of 100 the collector runs every few thousand events and costs a
// noticeable share of the CPU per event, command and append; BENCHMARKS.md
// ("Figures behind choices in the code") has the measurements.
//
// The price is memory: the heap may grow to five times the live data
// instead of twice. GOGC in the environment always wins; the services
// also set a soft memory limit (ordo's --memory-limit), so the relaxed
// target never lets the heap outgrow the machine.
const Percent = 400

// Set sets Percent unless GOGC is set in the environment, and returns the
// function that restores the previous setting.
func Set() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(Percent)
	return func() { debug.SetGCPercent(old) }
}
