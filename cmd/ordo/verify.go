package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/domain/fastjson"
	"github.com/ordo-dev/ordo/eventstore"
)

// violation is one event that breaks the lifecycle or an invariant.
type violation struct {
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	Type     string `json:"type"`
	Reason   string `json:"reason"`
}

// verifyReport is what ordo verify found.
type verifyReport struct {
	Events  int64 `json:"events"`
	Streams int   `json:"streams"` // order streams
	SKUs    int   `json:"sku_streams"`
	Skipped int64 `json:"skipped_events"` // in streams of a kind verify has no model for
	// CrossChecked: the orders that reached awaiting_payment were held to
	// their SKU streams (not with --prefix, which reads only some streams).
	CrossChecked bool        `json:"cross_stream_checked"`
	Violations   []violation `json:"violations"`
	Seconds      float64     `json:"seconds"`
	PerSecond    float64     `json:"events_per_second"`
}

// verifier folds every order stream through the domain, which refuses any
// event the lifecycle FSM or the money invariants do not allow, and every
// stock stream through the stock aggregate, which refuses oversell.
type verifier struct {
	codec   *domain.Codec
	streams map[string]*streamCheck
	report  verifyReport
	// For the cross-stream check (verifystock.go): the StockReserved of
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

func newVerifier() *verifier {
	return &verifier{codec: fastjson.NewCodec(), streams: make(map[string]*streamCheck), skus: make(map[string]*skuFacts)}
}

// checkFor starts following a stream, or returns nil for a kind of stream
// the domain has no model for.
func (v *verifier) checkFor(stream string) *streamCheck {
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

func (v *verifier) add(e eventstore.RecordedEvent) {
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

func (v *verifier) flag(e eventstore.RecordedEvent, reason string) {
	v.report.Violations = append(v.report.Violations, violation{Stream: e.Stream, Revision: e.Revision, Type: e.Type, Reason: reason})
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := newFlagSet("ordo verify [--prefix order-] [--stock auto|ordo] [--json] [--esdb-url URL | --data DIR]",
		"Replays every stream through the domain: order streams through the lifecycle (FSM) and\n"+
			"the money invariants, stock streams (sku-…) through the stock invariants (never\n"+
			"oversold, a reservation settled once). Then, across streams: every order that reached\n"+
			"awaiting_payment must have had its lines' stock reserved in its SKU streams by then, and\n"+
			"kept it until it was cancelled, refunded or shipped, if its stock is Ordo's: the saga\n"+
			"recorded the reservation, or a SKU of the order had a stock stream before (with\n"+
			"--manual-stock another system keeps the stock), or --stock ordo says every order's is.\n"+
			"Reports each violation with stream, revision\n"+
			"and reason; exits with status 1 if any. Progress goes to stderr; the report to stdout.\n"+
			"The pass runs the garbage collector less often than Go's default (GOGC=400), so the\n"+
			"heap may grow to five times the folded state; set GOGC (e.g. GOGC=100) to choose.",
		[]string{"ordo verify", "ordo verify --prefix order-0b9f --json", "ordo verify --esdb-url 'esdb://db1:2113?tls=false'"}, stderr)
	sf.register(fs)
	prefix := fs.String("prefix", "", "verify only streams whose name starts with this, e.g. order- or sku- (default: every stream)")
	scope := fs.String("stock", string(stockAuto), "whose stock the cross-stream check holds to the SKU streams: auto (decided per order from the events) or ordo (every order's: the service never ran with --manual-stock)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	if err := parseNoArgs(fs, args, "verify"); err != nil {
		return err
	}
	if s := stockScope(*scope); s != stockAuto && s != stockOrdo {
		return usageError{fmt.Sprintf("--stock must be auto or ordo, got %q", *scope)}
	}
	store, head, done, err := sf.openAtHead(ctx)
	if err != nil {
		return err
	}
	defer done()
	defer relaxGC()()
	prog := newProgress(stderr, "verify", 0, head)
	lastPos := uint64(0)
	progress := func(pos uint64, n int64) {
		lastPos = pos
		if !*quiet {
			prog.update(pos, n)
		}
	}
	var filter eventstore.Filter
	if *prefix != "" {
		filter.StreamPrefixes = []string{*prefix}
	}
	rep, err := verifyStoreScoped(ctx, store, filter, head, progress, stockScope(*scope))
	if err != nil {
		return err
	}
	if !*quiet {
		prog.finish(max(lastPos, head), rep.Events)
	}
	if rep.Violations == nil {
		rep.Violations = []violation{}
	}
	if *asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		if len(rep.Violations) > 0 {
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM\tREVISION\tEVENT\tREASON")
			for _, x := range rep.Violations {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", x.Stream, x.Revision, x.Type, x.Reason)
			}
			tw.Flush()
		}
		fmt.Fprintf(stdout, "verified %d events in %d order streams and %d stock streams in %.1fs (%.0f events/s): %d violations",
			rep.Events, rep.Streams, rep.SKUs, rep.Seconds, rep.PerSecond, len(rep.Violations))
		if rep.Skipped > 0 {
			fmt.Fprintf(stdout, "; %d events in streams that are neither orders nor stock were not checked", rep.Skipped)
		}
		if !rep.CrossChecked {
			fmt.Fprint(stdout, "; with --prefix, orders were not checked against their SKU streams")
		}
		fmt.Fprintln(stdout)
	}
	if len(rep.Violations) > 0 {
		return cliError{fmt.Errorf("%d violations", len(rep.Violations))}
	}
	return nil
}

// verifyStore folds every event of $all up to head that filter selects.
// Reading and folding run concurrently: the store's ScanAll reads several
// ranges of $all at once (the client's protobuf decoding, the larger part
// of a read, then runs on every core), and streams are spread over one
// verifier per CPU, each owning its streams' state, so a stream's events
// stay in order.
func verifyStore(ctx context.Context, store *eventstore.Store, filter eventstore.Filter, head uint64, progress func(pos uint64, events int64)) (verifyReport, error) {
	return verifyStoreScoped(ctx, store, filter, head, progress, stockAuto)
}

// verifyStoreScoped is verifyStore with the cross-stream check's scope (--stock).
func verifyStoreScoped(ctx context.Context, store *eventstore.Store, filter eventstore.Filter, head uint64, progress func(pos uint64, events int64), scope stockScope) (verifyReport, error) {
	start := time.Now()
	workers := max(runtime.GOMAXPROCS(0), 1)
	const batchSize = 512
	verifiers := make([]*verifier, workers)
	queues := make([]chan []eventstore.RecordedEvent, workers)
	var wg sync.WaitGroup
	for i := range verifiers {
		verifiers[i] = newVerifier()
		queues[i] = make(chan []eventstore.RecordedEvent, 8)
		wg.Add(1)
		go func(v *verifier, q chan []eventstore.RecordedEvent) {
			defer wg.Done()
			for batch := range q {
				for _, e := range batch {
					v.add(e)
				}
			}
		}(verifiers[i], queues[i])
	}
	pending := make([][]eventstore.RecordedEvent, workers)
	var read int64
	err := store.ScanAll(ctx, 0, filter, func(e eventstore.RecordedEvent) error {
		if e.Position > head {
			return errPastHead
		}
		w := int(streamHash(e.Stream) % uint32(workers))
		pending[w] = append(pending[w], e)
		if len(pending[w]) == batchSize {
			queues[w] <- pending[w]
			pending[w] = make([]eventstore.RecordedEvent, 0, batchSize)
		}
		read++
		if progress != nil && read%1024 == 0 {
			progress(e.Position, read)
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
		return verifyReport{}, err
	}
	var rep verifyReport
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
	// Streams left out by a filter would look like missing reservations.
	if rep.CrossChecked = len(filter.StreamPrefixes) == 0; rep.CrossChecked {
		rep.Violations = append(rep.Violations, crossCheck(claims, skus, scope)...)
	}
	sort.Slice(rep.Violations, func(i, j int) bool {
		a, b := rep.Violations[i], rep.Violations[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Revision < b.Revision
	})
	rep.Seconds = time.Since(start).Seconds()
	rep.PerSecond = float64(rep.Events) / max(rep.Seconds, 1e-9)
	if progress != nil {
		progress(head, read)
	}
	return rep, nil
}

func streamHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// errPastHead ends a pass at the head it measured at the start, so a
// pass over a live store ends.
var errPastHead = errors.New("past the head")
