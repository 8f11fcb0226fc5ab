package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
)

// Violation is one event that breaks the lifecycle or an invariant.
type Violation struct {
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	Type     string `json:"type"`
	Reason   string `json:"reason"`
}

// Report is what Verify found.
type Report struct {
	Events  int64 `json:"events"`
	Streams int   `json:"streams"` // order streams
	SKUs    int   `json:"sku_streams"`
	Skipped int64 `json:"skipped_events"` // in streams of a kind verify has no model for
	// CrossChecked: the orders that reached awaiting_payment were held to
	// their SKU streams (not with Options.Prefixes, which read only some
	// streams).
	CrossChecked bool        `json:"cross_stream_checked"`
	Violations   []Violation `json:"violations"`
	Seconds      float64     `json:"seconds"`
	PerSecond    float64     `json:"events_per_second"`
}

// Options is what Verify reads and how.
type Options struct {
	// Head ends the pass: an event past it is not read, so a pass over a
	// live store ends. The store's head at the start is the usual value.
	Head uint64
	// Prefixes, if any, limit the pass to streams whose name starts with
	// one of them; the cross-stream check is then left out, as streams
	// left out would look like missing reservations.
	Prefixes []string
	// Scope says whose stock the cross-stream check holds to the SKU
	// streams; the zero value is ScopeAuto.
	Scope Scope
	// Progress, if set, is called now and then with the position reached
	// and the events read so far, and once at the end with Head.
	Progress func(pos uint64, events int64)
}

// errPastHead ends a pass at Options.Head.
var errPastHead = errors.New("past the head")

// Verify folds every event of $all up to opts.Head that opts selects:
// order streams through the lifecycle (FSM) and the money invariants,
// stock streams through the stock invariants, and then, across streams,
// every order that reached awaiting_payment against its SKU streams
// (crossstream.go). Every event that breaks a rule is a Violation in the
// report, sorted by stream and revision; the error is the scan's.
//
// Reading and folding run concurrently: the Scanner may read several
// ranges of $all at once, and streams are spread over one Verifier per
// CPU, each owning its streams' state, so a stream's events stay in order.
func Verify(ctx context.Context, s Scanner, opts Options) (Report, error) {
	start := time.Now()
	workers := max(runtime.GOMAXPROCS(0), 1)
	const batchSize = 512
	verifiers := make([]*Verifier, workers)
	queues := make([]chan []Event, workers)
	var wg sync.WaitGroup
	for i := range verifiers {
		verifiers[i] = NewVerifier()
		queues[i] = make(chan []Event, 8)
		wg.Add(1)
		go func(v *Verifier, q chan []Event) {
			defer wg.Done()
			for batch := range q {
				for _, e := range batch {
					v.Add(e)
				}
			}
		}(verifiers[i], queues[i])
	}
	pending := make([][]Event, workers)
	var read int64
	err := s.ScanAll(ctx, 0, opts.Prefixes, func(e Event) error {
		if e.Position > opts.Head {
			return errPastHead
		}
		w := int(streamHash(e.Stream) % uint32(workers))
		pending[w] = append(pending[w], e)
		if len(pending[w]) == batchSize {
			queues[w] <- pending[w]
			pending[w] = make([]Event, 0, batchSize)
		}
		read++
		if opts.Progress != nil && read%1024 == 0 {
			opts.Progress(e.Position, read)
		}
		return nil
	})
	for i, q := range queues {
		if len(pending[i]) > 0 {
			q <- pending[i]
		}
		close(q)
	}
	wg.Wait()
	if err != nil && !errors.Is(err, errPastHead) {
		return Report{}, err
	}
	rep := merge(verifiers, len(opts.Prefixes) == 0, opts.Scope)
	rep.Seconds = time.Since(start).Seconds()
	rep.PerSecond = float64(rep.Events) / max(rep.Seconds, 1e-9)
	if opts.Progress != nil {
		opts.Progress(opts.Head, read)
	}
	return rep, nil
}

// merge adds up the verifiers' reports and, if crossCheck, holds their
// orders to their SKU streams.
func merge(verifiers []*Verifier, crossCheck bool, scope Scope) Report {
	var rep Report
	var claims []*stockClaim
	skus := map[string]*skuFacts{} // each SKU's stream is one verifier's
	for _, v := range verifiers {
		rep.Events += v.report.Events
		rep.Skipped += v.report.Skipped
		rep.Violations = append(rep.Violations, v.report.Violations...)
		rep.Streams += v.report.Streams
		rep.SKUs += v.report.SKUs
		claims = append(claims, v.claims...)
		for sku, f := range v.skus {
			skus[sku] = f
		}
	}
	if rep.CrossChecked = crossCheck; crossCheck {
		rep.Violations = append(rep.Violations, checkClaims(claims, skus, scope)...)
	}
	sort.Slice(rep.Violations, func(i, j int) bool {
		a, b := rep.Violations[i], rep.Violations[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Revision < b.Revision
	})
	return rep
}

// streamHash spreads streams over the verifiers: FNV-1a, written out
// because hash/fnv's Write takes a []byte through an interface, which
// copies every stream name to the heap.
func streamHash(s string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * prime
	}
	return h
}

// Verifier folds the events it is given, stream by stream: every order
// stream through the domain, which refuses any event the lifecycle FSM or
// the money invariants do not allow, and every stock stream through the
// stock aggregate, which refuses oversell. It is Verify's work for one
// goroutine, without the cross-stream check; each stream's events must
// come to it in order.
type Verifier struct {
	codec   *domain.Codec
	streams map[string]*streamCheck
	report  Report
	// For the cross-stream check (crossstream.go): the StockReserved of
	// this verifier's order streams, and its SKU streams' reservations.
	claims []*stockClaim
	skus   map[string]*skuFacts
}

// streamCheck follows one stream: the revision its next event must have,
// the fold into its aggregate, and what the cross-stream check notes of
// it (order or stock, by the stream's kind).
type streamCheck struct {
	next  uint64
	apply func(domain.Event) error
	order *orderTrack
	stock *skuFacts
}

// NewVerifier returns a Verifier that has seen nothing.
func NewVerifier() *Verifier {
	return &Verifier{codec: jsonwire.NewCodec(), streams: make(map[string]*streamCheck), skus: make(map[string]*skuFacts)}
}

// Report is what the verifier found in its own streams so far.
func (v *Verifier) Report() Report { return v.report }

// checkFor starts following a stream, or returns nil for a kind of stream
// the domain has no model for.
func (v *Verifier) checkFor(stream string) *streamCheck {
	if id, ok := strings.CutPrefix(stream, commands.StreamName("")); ok {
		v.report.Streams++
		return &streamCheck{apply: domain.NewOrder(id).Apply, order: &orderTrack{id: id}}
	}
	if sku, ok := domain.SKUOfStream(stream); ok {
		v.report.SKUs++
		st := domain.NewStock(sku)
		facts := &skuFacts{}
		v.skus[sku] = facts
		return &streamCheck{apply: func(ev domain.Event) error { return st.Apply(ev.Data) }, stock: facts}
	}
	return nil
}

// Add folds the next event of its stream.
func (v *Verifier) Add(e Event) {
	v.report.Events++
	c := v.streams[e.Stream]
	if c == nil {
		if c = v.checkFor(e.Stream); c == nil {
			v.report.Skipped++
			return
		}
		v.streams[e.Stream] = c
	}
	if e.Revision != c.next {
		v.flag(e, fmt.Sprintf("revision %d follows %d: events are missing from the stream", e.Revision, int64(c.next)-1))
	}
	c.next = e.Revision + 1
	ev, err := v.codec.Decode(e.Type, e.Data, e.Metadata)
	if err != nil {
		v.flag(e, "cannot be decoded: "+err.Error())
		return
	}
	if err := c.apply(ev); err != nil {
		v.flag(e, err.Error())
		return
	}
	switch {
	case c.order != nil:
		v.observeOrder(c.order, e, ev)
	case c.stock != nil:
		v.observeStock(c.stock, e, ev)
	}
}

func (v *Verifier) flag(e Event, reason string) {
	v.report.Violations = append(v.report.Violations, Violation{Stream: e.Stream, Revision: e.Revision, Type: e.Type, Reason: reason})
}
