package nats

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultMinFreeDisk is how much free space JetStream leaves on its disk
// by default (EmbeddedConfig.MinFreeDisk).
const DefaultMinFreeDisk = 4 << 20

// jetStreamUnlimited is the server-wide store limit the embedded server
// starts with: the guard sets the real one. Without an explicit limit
// nats-server takes 75 % of the space free at start, which on a restart
// with a full disk is below what it already holds, refusing every message
// for good.
const jetStreamUnlimited = math.MaxInt64 / 4

// diskGuardEvery is how often the guard looks at the disk.
const diskGuardEvery = 100 * time.Millisecond

// diskGuard keeps JetStream from writing its disk full. nats-server marks a
// stream that fails a write (ENOSPC included) as broken until JetStream
// restarts, so the guard keeps the account's store limit at what JetStream
// holds plus the free space above MinFreeDisk: below it, publishes are
// refused with an "insufficient resources" error and nothing is stored,
// and they are taken again once space is freed. Should a write fail all
// the same (another program filled the disk between two looks), the guard
// restarts JetStream once space is back, which reloads the broken streams.
type diskGuard struct {
	s     *server.Server
	dir   string
	floor int64
	log   *slog.Logger
	jsCfg server.JetStreamConfig

	limit    int64 // the account store limit in force, 0 before the first
	refusing bool
	// writeFailed is set by the server's logger when a store write hit
	// ENOSPC; the guard then restarts JetStream once space is back.
	writeFailed *atomic.Bool

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func newDiskGuard(s *server.Server, dir string, floor int64, log *slog.Logger, jsCfg server.JetStreamConfig, writeFailed *atomic.Bool) *diskGuard {
	return &diskGuard{s: s, dir: dir, floor: floor, log: log, jsCfg: jsCfg, writeFailed: writeFailed,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// run checks the disk until close.
func (g *diskGuard) run() {
	defer close(g.done)
	t := time.NewTicker(diskGuardEvery)
	defer t.Stop()
	for {
		g.check()
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
	}
}

func (g *diskGuard) close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

// check adjusts the store limit to the free space, and restarts JetStream
// after a failed write once the disk has room again.
func (g *diskGuard) check() {
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if g.writeFailed.Load() && free >= 2*g.floor {
		g.restartJetStream()
		return
	}
	acc := g.s.GlobalAccount()
	usage := acc.JetStreamUsage()
	used := int64(usage.Store)
	limit := used + max(0, free-g.floor)
	refusing := free < g.floor
	if refusing == g.refusing && g.limit != 0 && abs(limit-g.limit) < 1<<20 {
		return
	}
	l := usage.Limits
	if l.MaxStreams == 0 && l.MaxConsumers == 0 { // no limits yet: the server's dynamic ones
		l = server.JetStreamAccountLimits{MaxMemory: -1, MaxStreams: -1, MaxConsumers: -1, MaxAckPending: -1,
			MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1}
	}
	l.MaxStore = limit
	if err := acc.UpdateJetStreamLimits(map[string]server.JetStreamAccountLimits{"": l}); err != nil {
		g.log.Warn("JetStream: could not adjust the store limit to the free disk space", "err", err)
		return
	}
	g.limit = limit
	switch {
	case refusing && !g.refusing:
		g.log.Error("JetStream: the disk is nearly full; new messages (commands, outcomes, timers) are refused until space is freed",
			"free", mib(free), "keeps_free", mib(g.floor), "dir", g.dir)
	case !refusing && g.refusing:
		g.log.Info("JetStream: disk space is back; new messages are stored again", "free", mib(free), "dir", g.dir)
	}
	g.refusing = refusing
}

// restartJetStream reloads JetStream from its files, clearing the write
// error nats-server keeps on a stream after a failed write.
func (g *diskGuard) restartJetStream() {
	g.log.Warn("JetStream: a write failed on the full disk; restarting JetStream now that space is back", "dir", g.dir)
	if err := g.s.ShutdownJetStream(); err != nil {
		g.log.Error("JetStream: stop for the restart", "err", err)
		return
	}
	cfg := g.jsCfg
	if err := g.s.EnableJetStream(&cfg); err != nil {
		g.log.Error("JetStream: restart after the full disk; restart the service", "err", err)
		return
	}
	g.writeFailed.Store(false)
	g.limit, g.refusing = 0, false
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
