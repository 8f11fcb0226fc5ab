package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrDiskFull: the disk holding the store has less free space than the
// store keeps in reserve, so appends are refused before the storage engine
// could run out of space in the middle of a write (which it cannot always
// survive). Nothing of a refused append is stored; once space is freed,
// appends resume by themselves.
var ErrDiskFull = errors.New("disk full")

// Defaults of the disk reserve (Options.DiskReserve, Options.Ballast).
const (
	DefaultDiskReserve = 16 << 20
	DefaultBallast     = 8 << 20
)

// ballastFile, in the store's directory, holds space the store gives back
// when the engine hits a full disk anyway (another program filled it
// between two checks): the engine's write that failed is retried once the
// ballast is gone, so it never fails on the paths where a failure is fatal.
const ballastFile = "ordo.ballast"

// diskCheckEvery bounds how stale the free-space figure may get: other
// programs share the disk, and a full store should notice freed space soon.
const diskCheckEvery = 100 * time.Millisecond

// diskGuard decides whether the store may write: it refuses a group commit
// that would leave less than the reserve free. Free space comes from
// statfs, at most every diskCheckEvery, minus what the store wrote since;
// only the writer goroutine calls admit. onDiskFull runs on whatever
// engine goroutine hit ENOSPC.
type diskGuard struct {
	dir     string
	reserve int64
	ballast int64         // 0: no ballast
	every   time.Duration // at most this long between two statfs
	log     *slog.Logger

	free    int64 // bytes free at the last statfs, less what was admitted since
	checked time.Time
	full    bool // appends are being refused
	// released is set once the engine hit ENOSPC and the ballast was
	// removed to let its write through.
	released atomic.Bool
}

func newDiskGuard(dir string, reserve, ballast int64, every time.Duration, log *slog.Logger) *diskGuard {
	if every <= 0 {
		every = diskCheckEvery
	}
	return &diskGuard{dir: dir, reserve: reserve, ballast: ballast, every: every, log: log}
}

// prepare runs before the engine opens. Replaying the engine's log writes
// a table of up to the log's size: when the disk has not that much free,
// the ballast is given back first, and without a ballast Open fails with
// ErrDiskFull instead of letting the engine retry that write forever.
// The store starts refusing appends (full) when less than the reserve and
// the ballast it still has to create are free.
func (g *diskGuard) prepare() error {
	if err := g.refresh(); err != nil {
		return err
	}
	need := logBytes(g.dir) + openSlack
	if g.free < need && g.hasBallast() {
		if err := os.Remove(g.ballastPath()); err != nil {
			return fmt.Errorf("release the disk ballast: %w", err)
		}
		g.log.Warn("event store: the disk is nearly full; released the ballast so the store can open",
			"free", mib(g.free), "dir", g.dir)
		if err := g.refresh(); err != nil {
			return err
		}
	}
	if g.free < need {
		return fmt.Errorf("%w: the event store in %s cannot open: replaying its log needs about %s and only %s are free; "+
			"free some space and start again", ErrDiskFull, g.dir, mib(need), mib(g.free))
	}
	if g.free < g.reserve+g.ballastMissing() {
		g.full = true
		g.log.Error("event store: the disk is nearly full; appends are refused until space is freed",
			"free", mib(g.free), "reserve", mib(g.reserve), "dir", g.dir)
		return nil
	}
	return g.ensureBallast()
}

// openSlack is what opening the engine writes besides the table of its
// replayed log (a MANIFEST, an OPTIONS file, markers).
const openSlack = 1 << 20

// logBytes is the size of the engine's write-ahead log files in dir.
func logBytes(dir string) int64 {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var n int64
	for _, p := range logs {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// admit reports whether a group commit of about n bytes may be written.
func (g *diskGuard) admit(n int64) error {
	if g.released.Load() && !g.full {
		g.full = true
		g.log.Error("event store: the disk filled up; appends are refused until space is freed",
			"dir", g.dir, "reserve", mib(g.reserve))
	}
	if time.Since(g.checked) >= g.every || (!g.full && g.free-n < g.reserve) {
		if err := g.refresh(); err != nil {
			return err
		}
	}
	if g.full {
		if g.free < g.reserve+g.ballastMissing() {
			return g.errFull()
		}
		if err := g.ensureBallast(); err != nil {
			return g.errFull()
		}
		g.full = false
		g.released.Store(false)
		g.log.Info("event store: disk space is back; appends resume", "free", mib(g.free), "dir", g.dir)
	}
	if g.free-n < g.reserve {
		g.full = true
		g.log.Error("event store: the disk is nearly full; appends are refused until space is freed",
			"free", mib(g.free), "reserve", mib(g.reserve), "dir", g.dir)
		return g.errFull()
	}
	g.free -= n
	return nil
}

func (g *diskGuard) errFull() error {
	need := fmt.Sprintf("the %s the event store keeps in reserve", mib(g.reserve))
	if missing := g.ballastMissing(); missing > 0 && g.full {
		need = fmt.Sprintf("the %s the event store needs to resume (a %s reserve and its %s ballast file)",
			mib(g.reserve+missing), mib(g.reserve), mib(missing))
	}
	return fmt.Errorf("%w: %s free on the disk of %s, below %s; free some space: appends resume by themselves",
		ErrDiskFull, mib(g.free), g.dir, need)
}

// refresh reads the free space from the file system.
func (g *diskGuard) refresh() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(g.dir, &st); err != nil {
		return fmt.Errorf("free space of %s: %w", g.dir, err)
	}
	g.free = int64(st.Bavail) * int64(st.Bsize)
	g.checked = time.Now()
	return nil
}

// onDiskFull is the engine's ENOSPC hook: it gives the ballast back so the
// write that failed can be retried, and marks the store full. It must be
// quick: the engine holds every other write until it returns.
func (g *diskGuard) onDiskFull() {
	if g.ballast > 0 {
		_ = os.Remove(g.ballastPath())
	}
	g.released.Store(true)
}

func (g *diskGuard) ballastPath() string { return filepath.Join(g.dir, ballastFile) }

func (g *diskGuard) hasBallast() bool {
	fi, err := os.Stat(g.ballastPath())
	return err == nil && fi.Size() >= g.ballast
}

// ballastMissing is how much space the ballast still needs.
func (g *diskGuard) ballastMissing() int64 {
	if g.ballast <= 0 || g.hasBallast() {
		return 0
	}
	return g.ballast
}

// ensureBallast creates the ballast file if it is missing, with its blocks
// allocated (fallocate, or zeros where the file system cannot).
func (g *diskGuard) ensureBallast() error {
	if g.ballast <= 0 {
		if err := os.Remove(g.ballastPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if g.hasBallast() {
		return nil
	}
	if g.free < g.reserve+g.ballast {
		return g.errFull()
	}
	tmp := g.ballastPath() + ".tmp"
	err := writeBallast(tmp, g.ballast)
	if err == nil {
		err = os.Rename(tmp, g.ballastPath())
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create the disk ballast %s: %w", g.ballastPath(), err)
	}
	return g.refresh()
}

func writeBallast(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		err = writeZeros(f, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// mib formats a byte count for messages.
func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
