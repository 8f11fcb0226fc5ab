package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ordo-dev/ordo/eventstore/datadir"
)

// ErrNoStore: Open with MustExist found no event store in the directory.
var ErrNoStore = errors.New("no event store")

// memTableSize is the engine's write buffer. It bounds the table that
// replaying the log at Open writes, which the disk ballast must cover on a
// full disk; small tables flush often but cheaply.
const memTableSize = 4 << 20

// blockCacheSize is the engine's cache of decompressed blocks. Pebble's
// default (8 MiB) holds the blocks of only a few tens of thousands of
// streams, so reading an order that was written a while ago (the stock API
// reads the order of every reservation) went to the file and decompressed
// the block again. The cache takes memory only as blocks are read.
const blockCacheSize = 64 << 20

// Open opens (or creates) the store in dir. After a crash it holds exactly
// the groups whose synced write completed.
//
// Open takes dir's lock first (an error wrapping datadir.ErrInUse when
// another process has it open) and refuses a store that holds fewer events
// than it had acknowledged (*LostEventsError; Check with AcceptLoss lets
// it open again).
func Open(dir string, opts Options) (*Store, error) {
	opts = withDefaults(opts)
	if err := prepareDir(dir, opts.MustExist); err != nil {
		return nil, err
	}
	lock, err := datadir.Acquire(dir)
	if err != nil {
		return nil, err
	}
	s, err := open(dir, opts, lock)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	return s, nil
}

func withDefaults(opts Options) Options {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 1024
	}
	if opts.SubscriptionBuffer <= 0 {
		opts.SubscriptionBuffer = 256
	}
	if opts.DiskReserve <= 0 {
		opts.DiskReserve = DefaultDiskReserve
	}
	switch {
	case opts.Ballast == 0:
		opts.Ballast = DefaultBallast
	case opts.Ballast < 0:
		opts.Ballast = 0
	}
	return opts
}

// prepareDir creates dir, or with mustExist checks that it holds a store
// without creating anything.
func prepareDir(dir string, mustExist bool) error {
	if !mustExist {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create event store directory %s: %w", dir, err)
		}
		return nil
	}
	exists, err := Exists(dir)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%w at %s", ErrNoStore, dir)
	}
	return nil
}

// Exists reports whether dir holds an event store (or what is left of one:
// the record of its head counts, so a store whose engine files are gone is
// reported as damaged, not as absent).
func Exists(dir string) (bool, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if _, err := os.Stat(dir + "/" + headFile); err == nil {
		return true, nil
	}
	desc, err := pebble.Peek(dir, vfs.Default)
	if err != nil {
		return false, fmt.Errorf("look for an event store in %s: %w", dir, err)
	}
	return desc.Exists, nil
}

func open(dir string, opts Options, lock *datadir.Lock) (*Store, error) {
	rec, recorded, err := readHead(dir)
	if err != nil {
		return nil, fmt.Errorf("%w; run `ordo eventstore check --data %s` (it verifies every file), "+
			"then accept what the store holds with --accept-loss", err, dir)
	}
	disk := newDiskGuard(dir, opts.DiskReserve, opts.Ballast, opts.diskCheckEvery, opts.Logger)
	if err := disk.prepare(); err != nil {
		return nil, err
	}
	engine := newEngineLog(opts.Logger)
	db, err := openEngine(dir, engine, disk, engineOptions{mustExist: opts.MustExist || recorded})
	if errors.Is(err, pebble.ErrDBDoesNotExist) && recorded {
		return nil, &LostEventsError{Dir: dir, Acknowledged: rec.Head}
	}
	if err != nil {
		return nil, err
	}
	s := &Store{
		db: db, dir: dir, opts: opts, log: opts.Logger, now: opts.Now,
		lock: lock, disk: disk, engine: engine,
		reqs:    make(chan *writeReq, 4096),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
		subs:    make(map[*Subscription]chan []Record),
		states:  make(map[string]*streamState),
		reads:   newReadStates(),
		recent:  make(map[[16]byte]recentID),
	}
	head, err := s.lastPosition()
	if err == nil {
		s.missing, err = s.verifyHistory(head, rec)
	}
	if err == nil {
		s.headRec, err = openHeadRecord(dir, rec.seq)
	}
	if err == nil {
		err = s.headRec.record(head, s.missing)
	}
	if err != nil {
		if s.headRec != nil {
			s.headRec.close()
		}
		db.Close()
		return nil, err
	}
	s.head.Store(uint64(head))
	go s.writer()
	return s, nil
}

// engineOptions are the ways the store opens its engine.
type engineOptions struct {
	mustExist bool // never create a database
	readOnly  bool // replay the log in memory, write nothing (ordo eventstore check)
}

// openEngine opens pebble in dir. A fatal engine error while opening (it
// can happen while the log is replayed on a full disk) is returned, not
// panicked.
func openEngine(dir string, engine *engineLog, disk *diskGuard, eo engineOptions) (db *pebble.DB, err error) {
	fsys := vfs.Default
	if disk != nil {
		fsys = vfs.OnDiskFull(vfs.Default, disk.onDiskFull)
	}
	fsys = noPreallocFS{fsys}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(engineFatal)
			if !ok {
				panic(r)
			}
			db, err = nil, fmt.Errorf("open event store in %s: %w", dir, f)
		}
	}()
	cache := pebble.NewCache(blockCacheSize)
	defer cache.Unref() // the engine holds its own reference while open
	db, err = pebble.Open(dir, &pebble.Options{
		Cache:            cache,
		FS:               fsys,
		Logger:           engine,
		EventListener:    engine.eventListener(dir),
		MemTableSize:     memTableSize,
		ErrorIfNotExists: eo.mustExist,
		ReadOnly:         eo.readOnly,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, pebble.ErrDBDoesNotExist):
		return nil, err
	case pebble.IsCorruptionError(err):
		return nil, fmt.Errorf("open event store in %s: its files are damaged (%s); run `ordo eventstore check --data %s` "+
			"and restore the directory from a backup", dir, firstLine(err), dir)
	}
	return nil, fmt.Errorf("open event store in %s: %s; if its files are damaged or missing, `ordo eventstore check --data %s` "+
		"says so, and the directory must be restored from a backup", dir, firstLine(err), dir)
}

// firstLine is an engine error's message without the details it carries
// on further lines.
func firstLine(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// Close stops accepting writes, finishes the queued ones, ends every
// subscription with ErrClosed, closes the engine and releases the
// directory's lock.
func (s *Store) Close() error {
	// Once, not a flag: a second caller (the server's shutdown races a
	// timer that closes the store to end subscriptions) must wait until the
	// files are closed and their lock released, or a restart on the same
	// directory finds the lock still held.
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closed = true
		close(s.closing)
		s.closeMu.Unlock()
		<-s.stopped
		s.subsMu.Lock()
		for sub, ch := range s.subs {
			close(ch)
			delete(s.subs, sub)
		}
		s.subsMu.Unlock()
		s.closeErr = errors.Join(s.closeEngine(), s.headRec.close(), s.lock.Unlock())
	})
	return s.closeErr
}

// closeEngine closes pebble; after a fatal engine error that can panic
// (the engine's state is inconsistent), which is reported as an error.
func (s *Store) closeEngine() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("close event store in %s after an engine failure: %v", s.dir, r)
		}
	}()
	return s.db.Close()
}
