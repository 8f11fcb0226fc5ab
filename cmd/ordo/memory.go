package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimit is the --memory-limit flag of ordo serve and ordo eventstore
// serve: the process's soft memory limit (runtime/debug.SetMemoryLimit).
// At GOGC=400 the heap may grow to five times the live data before the
// collector runs; the limit makes it collect earlier whenever the process
// nears it, so one costly request or a burst of garbage can never grow the
// process until the machine runs out of memory. It takes GOMEMLIMIT's
// syntax: a number of bytes with an optional unit B, KiB, MiB, GiB or TiB,
// or "off".
type memoryLimit struct {
	set   bool  // given on the command line
	bytes int64 // math.MaxInt64 when off
}

func (m *memoryLimit) String() string {
	switch {
	case !m.set:
		return ""
	case m.bytes == math.MaxInt64:
		return "off"
	}
	return strconv.FormatInt(m.bytes, 10)
}

// Set parses a limit in GOMEMLIMIT's syntax.
func (m *memoryLimit) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	m.set, m.bytes = true, n
	return nil
}

// parseByteSize reads "off" or an integer with an optional unit suffix.
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return math.MaxInt64, nil
	}
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("memory limit %q: want a positive number of bytes with an optional unit (B, KiB, MiB, GiB, TiB), e.g. 2GiB, or off", s)
	}
	return n << shift, nil
}

// Default memory limit: a share of the memory the process may use (the
// container's limit, else the machine's), and never below a floor that
// leaves room for the embedded NATS server and the event store's caches.
const (
	defaultMemoryShare = 0.75
	minMemoryLimit     = 256 << 20
)

// applyMemoryLimit sets the soft memory limit: the flag's when given, else
// GOMEMLIMIT's when set (the runtime already applied it at start), else
// defaultMemoryShare of the memory available. It logs the choice and
// returns the function that restores the previous limit.
func applyMemoryLimit(flag memoryLimit, getenv func(string) string, available func() (int64, string), log *slog.Logger) (restore func()) {
	var limit int64
	var source string
	switch {
	case flag.set:
		limit, source = flag.bytes, "--memory-limit"
	case getenv("GOMEMLIMIT") != "":
		log.Info("memory limit", "limit", getenv("GOMEMLIMIT"), "source", "GOMEMLIMIT")
		return func() {}
	default:
		total, from := available()
		if total <= 0 {
			log.Warn("memory limit: the available memory is unknown, so no limit is set; set --memory-limit or GOMEMLIMIT")
			return func() {}
		}
		limit, source = max(int64(float64(total)*defaultMemoryShare), minMemoryLimit), "default ("+from+")"
	}
	old := debug.SetMemoryLimit(limit)
	if limit == math.MaxInt64 {
		log.Info("memory limit", "limit", "off", "source", source)
	} else {
		log.Info("memory limit", "limit_mib", limit>>20, "source", source)
	}
	return func() { debug.SetMemoryLimit(old) }
}

// availableMemory is the memory this process may use: the cgroup's limit
// (v2, then v1) when one is set, else the machine's physical memory, with
// where the figure came from; 0 when none can be read (not Linux).
func availableMemory() (int64, string) {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n, "cgroup memory.max"
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < 1<<60 {
			return n, "cgroup memory.limit_in_bytes"
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return kb << 10, "physical memory"
				}
			}
		}
	}
	return 0, ""
}
