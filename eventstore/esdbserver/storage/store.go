package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ordo-dev/ordo/eventstore/datadir"
)

// Options tune a Store. The zero value is usable.
type Options struct {
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // clock for Record.Created; nil is time.Now
	// MaxGroup caps how many appends share one fsync (default 1024).
	MaxGroup int
	// SubscriptionBuffer is how many commit groups a live subscriber may lag
	// before it is dropped back to catching up from disk (default 256).
	SubscriptionBuffer int
	// MustExist refuses to create a store: Open of a directory without one
	// fails with ErrNoStore and creates nothing.
	MustExist bool
	// DiskReserve is how much free disk space appends leave at least
	// (default DefaultDiskReserve); below it they fail with ErrDiskFull.
	DiskReserve int64
	// Ballast is the size of the file the store holds back for the
	// moment the disk fills anyway (default DefaultBallast; negative: none).
	Ballast int64
	// OnCommit, when set, is told about every group commit, on the writer's
	// goroutine after the group was answered: it must be quick (count,
	// observe a histogram) and must not block or call the store.
	OnCommit func(Commit)

	diskCheckEvery time.Duration // how stale the free space may get; tests stretch it
}

// Store is the durable event log. All writes go through one goroutine, which
// decides appends in arrival order against the current stream revisions and
// commits whole groups of them with a single synced write (group commit);
// reads and subscriptions run concurrently against committed data.
type Store struct {
	db   *pebble.DB
	dir  string
	opts Options
	log  *slog.Logger
	now  func() time.Time

	lock    *datadir.Lock
	disk    *diskGuard
	engine  *engineLog
	headRec *headRecord // written by the writer only
	missing uint64      // positions up to the head accepted as lost
	// failed is set when the engine failed on the commit path; the store
	// then refuses every write until it is reopened.
	failed atomic.Pointer[error]

	reqs    chan *writeReq
	closing chan struct{}
	stopped chan struct{}
	closeMu sync.RWMutex // held for reading by callers queueing writes
	closed  bool
	// closeOnce runs Close once; closeErr is its result for every caller.
	closeOnce sync.Once
	closeErr  error

	head atomic.Uint64 // last durable position; readers never look beyond it

	// syncs counts group commits, synced the writes they carried.
	syncs, synced atomic.Uint64

	subsMu sync.Mutex
	subs   map[*Subscription]chan []Record // live subscribers and their buffers

	// reads caches streams' states for readers (statecache.go); the
	// writer marks what each group changed.
	reads *readStates

	// Owned by the writer goroutine.
	states map[string]*streamState
	recent map[[16]byte]recentID
	// all holds the records decided in the group being committed (later
	// requests of the same group may need to compare against them);
	// pending, scratch, index and entries are commitGroup's buffers. All
	// are reused from group to group.
	all     []Record
	pending []pendingWrite
	scratch []byte
	index   []byte
	entries []indexEntry
	// lastGroup and commitTime (a moving average) drive linger.
	lastGroup   int
	commitTime  time.Duration
	lingerTimer *time.Timer
}

// streamState is what the writer knows of a stream to decide appends.
type streamState struct {
	last       int64 // last revision, -1 when no event was ever written
	tombstoned bool
	meta       streamMeta
}

// streamMeta is the part of a stream's metadata that changes reads.
type streamMeta struct {
	exists   bool  // the metastream has an event
	tb       int64 // $tb: events before this revision are deleted
	maxCount int64
	maxAge   time.Duration
}

// recentID remembers where an event ID was appended, for the best-effort
// idempotency of appends without an exact expected revision (EventStoreDB
// keeps a similar in-memory cache of recent commits).
type recentID struct {
	stream string
	rev    Revision
}

const (
	maxStates    = 200_000
	maxRecentIDs = 1_000_000
)

func (s *Store) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// WriteStats counts the store's group commits since it was opened.
type WriteStats struct {
	Groups uint64 // group commits (one synced batch each, when it wrote anything)
	Writes uint64 // appends, deletes and tombstones they carried
}

// WriteStats reports how well writes shared syncs: Writes/Groups is the
// mean group size.
func (s *Store) WriteStats() WriteStats {
	return WriteStats{Groups: s.syncs.Load(), Writes: s.synced.Load()}
}

// Head is the position of the last durable record, 0 when the log is empty.
func (s *Store) Head() Position { return Position(s.head.Load()) }

func (s *Store) lastPosition() (Position, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	return Position(beUint64(it.Key()[1:])), nil
}

// get reads the record at p.
func (s *Store) get(p Position) (Record, error) {
	v, closer, err := s.db.Get(logKey(p))
	if err != nil {
		return Record{}, fmt.Errorf("read record at %d: %w", p, err)
	}
	defer closer.Close()
	return decodeRecord(p, v)
}

// loadState reads a stream's state from disk as of position upTo: its last
// revision, whether it is tombstoned, and the metadata that affects it.
// Readers pass the durable head: pebble makes a batch visible before its
// WAL sync returns, so records beyond the head may still be lost in a crash
// and must not be seen. The writer, which has no batch in flight when it
// loads a state, passes maxPosition.
func (s *Store) loadState(stream string, upTo Position) (*streamState, error) {
	st := &streamState{last: -1}
	lower, upper := streamBounds(stream)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.Last(); ok; ok = it.Prev() {
		if Position(beUint64(it.Value())) > upTo {
			continue
		}
		rev := revFromStreamKey(it.Key())
		if rev == TombstoneRevision {
			st.tombstoned = true
			continue
		}
		st.last = int64(rev)
		break
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if !isMetastream(stream) {
		m, err := s.loadMeta(stream, upTo)
		if err != nil {
			return nil, err
		}
		st.meta = m
	}
	return st, nil
}

// loadMeta reads the latest metadata of stream from its metastream, as of
// position upTo.
func (s *Store) loadMeta(stream string, upTo Position) (streamMeta, error) {
	lower, upper := streamBounds(metastreamOf(stream))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return streamMeta{}, err
	}
	defer it.Close()
	ok := it.Last()
	for ok && Position(beUint64(it.Value())) > upTo {
		ok = it.Prev()
	}
	if !ok {
		return streamMeta{}, it.Error()
	}
	r, err := s.get(Position(beUint64(it.Value())))
	if err != nil {
		return streamMeta{}, err
	}
	return parseMeta(r.Data), nil
}

func beUint64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// parseMeta extracts the keys that change reads; unknown keys and malformed
// JSON leave the defaults (EventStoreDB stores metadata verbatim too).
func parseMeta(data []byte) streamMeta {
	m := streamMeta{exists: true}
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		return m
	}
	num := func(k string) int64 {
		var v json.Number
		if b, ok := raw[k]; ok && json.Unmarshal(b, &v) == nil {
			n, _ := v.Int64()
			return n
		}
		return 0
	}
	m.tb = num("$tb")
	m.maxCount = num("$maxCount")
	m.maxAge = time.Duration(num("$maxAge")) * time.Second
	return m
}

func isMetastream(stream string) bool { return strings.HasPrefix(stream, "$$") }

func metastreamOf(stream string) string { return "$$" + stream }

var _ io.Closer = (*Store)(nil)

// ErrInvalidRequest: the request itself is malformed (a bad stream name or
// filter); retrying it cannot succeed.
var ErrInvalidRequest = errors.New("invalid request")

// checkContext returns ctx's error, or ErrClosed after Close.
func (s *Store) checkContext(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return ErrClosed
	}
	return nil
}
