package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ordo-dev/ordo/retry"
)

// Digests fingerprint streams: per stream, how many events and a hash of
// their IDs, types, data and metadata in stream order. Two stores (or a
// store and an export file) hold the same history when their digests are
// equal. Revisions and positions are not hashed: they are the store's own
// numbering, and $all positions always differ between stores.
type Digests map[string]*StreamDigest

// StreamDigest is one stream's fingerprint.
type StreamDigest struct {
	Events int64
	h      hash.Hash
}

// Sum is the stream's content hash in hex.
func (d *StreamDigest) Sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// Add hashes e into its stream's digest; events must come in stream order.
func (d Digests) Add(e RecordedEvent) {
	sd := d[e.Stream]
	if sd == nil {
		sd = &StreamDigest{h: sha256.New()}
		d[e.Stream] = sd
	}
	sd.Events++
	var n [8]byte
	for _, part := range [][]byte{e.ID[:], []byte(e.Type), e.Data, e.Metadata} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		sd.h.Write(n[:])
		sd.h.Write(part)
	}
}

// Diff lists how other differs from d, for the streams in d, sorted by
// stream; it is empty when every stream of d is identical in other.
func (d Digests) Diff(other Digests) []string {
	var out []string
	for stream, want := range d {
		got := other[stream]
		switch {
		case got == nil:
			out = append(out, fmt.Sprintf("%s: missing (%d events expected)", stream, want.Events))
		case got.Events != want.Events:
			out = append(out, fmt.Sprintf("%s: %d events, expected %d", stream, got.Events, want.Events))
		case got.Sum() != want.Sum():
			out = append(out, fmt.Sprintf("%s: same %d events but different content (hash %s, expected %s)", stream, got.Events, got.Sum()[:12], want.Sum()[:12]))
		}
	}
	sort.Strings(out)
	return out
}

// Total is the number of events over all streams.
func (d Digests) Total() int64 {
	var n int64
	for _, sd := range d {
		n += sd.Events
	}
	return n
}

// ImportStats counts what an Importer did.
type ImportStats struct {
	Appended int64 // events written to the target
	Skipped  int64 // events the target already held (an earlier, interrupted run)
}

// Importer copies events into a store, preserving each stream's order and
// every event's ID, type, data and metadata. Streams are spread over
// concurrent writers (one writer per stream, so order holds) and
// consecutive events of a stream go in one append.
//
// It is idempotent: before a stream's first append it asks the target how
// far the stream already is and skips what is there, so a copy that was
// interrupted is simply run again. Whether the skipped events are really
// the same ones is for the caller's final Digests comparison to say.
type Importer struct {
	dst     *Store
	queues  []chan RecordedEvent
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	errOnce sync.Once
	err     error
	stats   struct{ appended, skipped atomic.Int64 }
}

// ImporterOptions tune an Importer.
type ImporterOptions struct {
	Writers  int // concurrent appends; default 16
	MaxBatch int // events per append; default 256
}

// NewImporter starts the writers; Add feeds them, Close waits for them.
func NewImporter(ctx context.Context, dst *Store, opts ImporterOptions) *Importer {
	if opts.Writers <= 0 {
		opts.Writers = 16
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	ctx, cancel := context.WithCancel(ctx)
	im := &Importer{dst: dst, cancel: cancel, queues: make([]chan RecordedEvent, opts.Writers)}
	for i := range im.queues {
		q := make(chan RecordedEvent, 4*opts.MaxBatch)
		im.queues[i] = q
		im.wg.Add(1)
		go func() {
			defer im.wg.Done()
			if err := im.write(ctx, q, opts.MaxBatch); err != nil {
				im.fail(err)
				for range q { // keep Add from blocking; its next call reports the error
				}
			}
		}()
	}
	return im
}

func (im *Importer) fail(err error) {
	im.errOnce.Do(func() { im.err = err; im.cancel() })
}

// Add queues an event for its stream's writer. Events of a stream must be
// added in stream order. It returns the first write error, if any.
func (im *Importer) Add(ctx context.Context, e RecordedEvent) error {
	h := fnv.New32a()
	h.Write([]byte(e.Stream))
	select {
	case im.queues[h.Sum32()%uint32(len(im.queues))] <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close waits for every queued event to be written and returns the stats
// and the first error.
func (im *Importer) Close() (ImportStats, error) {
	for _, q := range im.queues {
		close(q)
	}
	im.wg.Wait()
	im.cancel()
	return ImportStats{Appended: im.stats.appended.Load(), Skipped: im.stats.skipped.Load()}, im.err
}

// write is one writer: it appends runs of consecutive events per stream.
func (im *Importer) write(ctx context.Context, q chan RecordedEvent, maxBatch int) error {
	last := make(map[string]int64) // target's last revision per stream; -1: no stream
	batch := make([]RecordedEvent, 0, maxBatch)
	flush := func() error {
		for len(batch) > 0 {
			n := 1
			for n < len(batch) && batch[n].Stream == batch[0].Stream {
				n++
			}
			if err := im.appendRun(ctx, last, batch[:n]); err != nil {
				return err
			}
			batch = batch[n:]
		}
		batch = batch[:0]
		return nil
	}
	for e := range q {
		batch = append(batch, e)
	fill:
		for len(batch) < maxBatch {
			select {
			case e, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		// Keep a stream's events together so they go in one append; a
		// stable sort keeps each stream's own order.
		sort.SliceStable(batch, func(i, j int) bool { return batch[i].Stream < batch[j].Stream })
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// appendRun appends events of one stream after what the target holds. If
// someone else wrote to the stream meanwhile, it asks the target again
// once (appendRetry).
func (im *Importer) appendRun(ctx context.Context, last map[string]int64, run []RecordedEvent) error {
	stream := run[0].Stream
	return retry.Do(ctx, appendRetry, func(ctx context.Context, _ int) error {
		have, known := last[stream]
		if !known {
			var err error
			if have, err = im.lastRevision(ctx, stream); err != nil {
				return retry.Permanent(err)
			}
		}
		// The target already holds the first have+1 events of the stream
		// (in source numbering, revisions are 0, 1, … in order).
		todo := run
		for len(todo) > 0 && int64(todo[0].Revision) <= have {
			todo = todo[1:]
		}
		im.stats.skipped.Add(int64(len(run) - len(todo)))
		run = todo
		if len(run) == 0 {
			last[stream] = have
			return nil
		}
		exp := NoStream()
		if have >= 0 {
			exp = Exact(uint64(have))
		}
		data := make([]EventData, len(run))
		for i, e := range run {
			data[i] = EventData{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
		}
		_, err := im.dst.Append(ctx, stream, exp, data...)
		if errors.Is(err, ErrWrongExpectedRevision) {
			delete(last, stream) // someone else wrote; ask again
			return fmt.Errorf("copy %d events of %s: %w", len(run), stream, err)
		}
		if err != nil {
			return retry.Permanent(fmt.Errorf("copy %d events of %s: %w", len(run), stream, err))
		}
		im.stats.appended.Add(int64(len(run)))
		// Source numbering; the same as the target's unless the source
		// stream has gaps (truncated history), which the digests compare.
		last[stream] = int64(run[len(run)-1].Revision)
		return nil
	})
}

// appendRetry: an import retries an append at once, and once only, after
// the target's stream moved on under it; a second conflict means another
// writer keeps writing there, which the import must not race.
var appendRetry = retry.Policy{Attempts: 2}

// lastRevision is the target stream's last revision, -1 if it has none.
func (im *Importer) lastRevision(ctx context.Context, stream string) (int64, error) {
	last := int64(-1)
	err := im.dst.ReadStreamBackwards(ctx, stream, 1, func(e RecordedEvent) error { last = int64(e.Revision); return nil })
	if errors.Is(err, ErrStreamNotFound) {
		return -1, nil
	}
	return last, err
}
