package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ordo-dev/ordo/eventstore/datadir"
)

// CheckReport is what Check found in a store's files.
type CheckReport struct {
	Dir     string
	Records uint64 // log records read and decoded
	Indexed uint64 // stream index entries read and matched to their records
	// Head is the last position the engine holds; Acknowledged the last
	// one the store recorded as acknowledged (0 when it kept no record).
	Head, Acknowledged Position
	// Missing counts the positions up to Head the log lacks.
	Missing uint64
	// Problems lists every damage found; empty means the store is intact.
	Problems []string
	// Lossy: every problem is a loss of events (missing at the end or in
	// the middle, or the record of the head), which AcceptLoss can accept;
	// damaged data that cannot be read needs a backup.
	Lossy bool
	// Accepted: the loss was accepted (AcceptLoss) and the store now opens
	// with what it holds.
	Accepted bool
}

// CheckOptions tune Check.
type CheckOptions struct {
	// AcceptLoss records what the engine holds as acknowledged when every
	// problem is a loss of events, so the store opens again.
	AcceptLoss bool
	Logger     *slog.Logger
}

// Check verifies every file of the store in dir without changing it:
// the record of the acknowledged head, the engine's MANIFEST and
// write-ahead logs (while opening it read-only), every table block
// (checksums, key order), every log record (it decodes, no position is
// missing) and every stream index entry (it points to a record of its
// stream and revision, and every record has one). It takes the
// directory's lock, so it refuses a store that is in use. The error is for
// failures to run the check; damage is in the report's Problems.
func Check(ctx context.Context, dir string, opts CheckOptions) (rep CheckReport, err error) {
	rep.Dir = dir
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := prepareDir(dir, true); err != nil {
		return rep, err
	}
	lock, err := datadir.Acquire(dir)
	if err != nil {
		return rep, err
	}
	defer lock.Unlock()
	rec, recorded, herr := readHead(dir)
	rep.Acknowledged = rec.Head
	engine := newEngineLog(opts.Logger)
	db, err := openEngine(dir, engine, nil, engineOptions{mustExist: true, readOnly: true})
	if err != nil {
		if errors.Is(err, pebble.ErrDBDoesNotExist) && recorded {
			err = fmt.Errorf("the engine's MANIFEST is missing: %w", err)
		}
		rep.Problems = append(rep.Problems, err.Error())
		return rep, nil
	}
	defer db.Close()
	c := &checker{db: db, rep: &rep}
	c.run(ctx)
	if msg := engine.corrupt.Load(); msg != nil {
		rep.Problems = append(rep.Problems, "damaged data: "+*msg)
	}
	// Lost events and a damaged head record can be accepted; any other
	// damage needs a backup.
	damaged := len(rep.Problems) > 0
	if herr != nil {
		rep.Problems = append(rep.Problems, herr.Error())
	}
	if c.complete && rep.Head < rep.Acknowledged {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d acknowledged events are missing at the end: the store holds positions up to %d, "+
			"positions up to %d were acknowledged", rep.Acknowledged-rep.Head, rep.Head, rep.Acknowledged))
	}
	if c.complete && rep.Missing > rec.Missing {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d acknowledged events are missing from the log: positions %s",
			rep.Missing-rec.Missing, gapList(c.gaps, rep.Missing)))
		if c.dangling > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%d stream index entries point to those lost events: reads of their streams fail "+
				"(export the store and import it into a new one to leave them behind)", c.dangling))
		}
	}
	rep.Lossy = !damaged && len(rep.Problems) > 0
	if opts.AcceptLoss && rep.Lossy {
		if err := acceptHead(dir, rec.seq, rep.Head, rep.Missing); err != nil {
			return rep, err
		}
		rep.Accepted = true
	}
	return rep, ctx.Err()
}

// run scans everything, turning a panic of the engine on damage it does
// not expect into a problem.
func (c *checker) run(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			c.rep.Problems = append(c.rep.Problems, fmt.Sprintf("the storage engine failed while reading: %v", r))
		}
	}()
	c.scanLog(ctx)
	c.scanIndex(ctx)
	if err := c.db.CheckLevels(nil); err != nil {
		c.rep.Problems = append(c.rep.Problems, fmt.Sprintf("table check: %s", firstLine(err)))
	}
}

// acceptHead records head and the positions missing up to it as the
// store's acknowledged state, in both slots.
func acceptHead(dir string, seq uint64, head Position, missing uint64) error {
	h, err := openHeadRecord(dir, seq)
	if err != nil {
		return err
	}
	for range 2 {
		if err := h.record(head, missing); err != nil {
			h.close()
			return err
		}
	}
	return h.close()
}

// checker walks the engine's keys; problems go to the report, at most
// maxProblems of each kind.
type checker struct {
	db  *pebble.DB
	rep *CheckReport
	// complete: the whole log was read, so its last position is the head
	// and gaps are all the missing positions.
	complete bool
	gaps     []Gap
	dangling uint64 // index entries pointing to missing positions
}

const maxProblems = 20

func (c *checker) problem(n *int, format string, args ...any) {
	*n++
	if *n <= maxProblems {
		c.rep.Problems = append(c.rep.Problems, fmt.Sprintf(format, args...))
	} else if *n == maxProblems+1 {
		c.rep.Problems = append(c.rep.Problems, "… more problems of the same kind left out")
	}
}

// scanLog reads every log record: it must decode, carry its position as
// its key, positions must follow each other without gaps, and the record
// must be in its stream's index.
func (c *checker) scanLog(ctx context.Context) {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		c.rep.Problems = append(c.rep.Problems, fmt.Sprintf("read the log: %s", firstLine(err)))
		return
	}
	defer it.Close()
	var bad int
	var prev Position
	for ok := it.First(); ok && ctx.Err() == nil; ok = it.Next() {
		if len(it.Key()) != 9 {
			c.problem(&bad, "log key %x is not a position", it.Key())
			continue
		}
		p := Position(beUint64(it.Key()[1:]))
		if p > prev+1 {
			c.rep.Missing += uint64(p - prev - 1)
			if len(c.gaps) < maxGaps {
				c.gaps = append(c.gaps, Gap{From: prev + 1, To: p - 1})
			}
		}
		prev = p
		c.rep.Head = p
		r, err := decodeRecord(p, it.Value())
		if err != nil {
			c.problem(&bad, "record at %d: %v", p, err)
			continue
		}
		c.rep.Records++
		v, closer, err := c.db.Get(streamKey(r.Stream, r.Revision))
		if err != nil {
			c.problem(&bad, "record at %d (%s@%d) has no stream index entry: %s", p, r.Stream, r.Revision, firstLine(err))
			continue
		}
		if got := Position(beUint64(v)); got != p {
			c.problem(&bad, "the index entry of %s@%d points to %d, not to its record at %d", r.Stream, r.Revision, got, p)
		}
		closer.Close()
	}
	if err := it.Error(); err != nil {
		c.rep.Problems = append(c.rep.Problems, fmt.Sprintf("read the log after position %d: %s", prev, firstLine(err)))
		return
	}
	c.complete = ctx.Err() == nil
}

// scanIndex reads every stream index entry: it must point to a record of
// the same stream and revision.
func (c *checker) scanIndex(ctx context.Context) {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixStream}, UpperBound: []byte{prefixStream + 1}})
	if err != nil {
		c.rep.Problems = append(c.rep.Problems, fmt.Sprintf("read the stream index: %v", err))
		return
	}
	defer it.Close()
	var bad int
	for ok := it.First(); ok && ctx.Err() == nil; ok = it.Next() {
		k := it.Key()
		sep := bytes.IndexByte(k, 0)
		if sep < 0 || len(k) != sep+9 || len(it.Value()) != 8 {
			c.problem(&bad, "stream index key %q is malformed", k)
			continue
		}
		stream, rev, p := string(k[1:sep]), revFromStreamKey(k), Position(beUint64(it.Value()))
		v, closer, err := c.db.Get(logKey(p))
		if errors.Is(err, pebble.ErrNotFound) && p <= c.rep.Head {
			c.dangling++ // its record is one of the lost events
			continue
		}
		if err != nil {
			c.problem(&bad, "the index entry of %s@%d points to position %d, which has no record: %s", stream, rev, p, firstLine(err))
			continue
		}
		r, err := decodeRecord(p, v)
		closer.Close()
		if err != nil {
			continue // reported by scanLog
		}
		if r.Stream != stream || r.Revision != rev {
			c.problem(&bad, "the index entry of %s@%d points to position %d, which holds %s@%d", stream, rev, p, r.Stream, r.Revision)
			continue
		}
		c.rep.Indexed++
	}
	if err := it.Error(); err != nil {
		c.rep.Problems = append(c.rep.Problems, fmt.Sprintf("read the stream index: %s", firstLine(err)))
	}
}
