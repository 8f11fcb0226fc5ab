package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
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
	Events     int64       `json:"events"`
	Streams    int         `json:"streams"` // order streams
	SKUs       int         `json:"sku_streams"`
	Skipped    int64       `json:"skipped_events"` // in streams of a kind verify has no model for
	Violations []violation `json:"violations"`
	Seconds    float64     `json:"seconds"`
	PerSecond  float64     `json:"events_per_second"`
}

// verifier folds every order stream through the domain, which refuses any
// event the lifecycle FSM or the money invariants do not allow.
type verifier struct {
	codec   *domain.Codec
	orders  map[string]*orderCheck
	stocks  map[string]*stockCheck
	report  verifyReport
	onEvent func(pos uint64, events int64)
}

type orderCheck struct {
	order *domain.Order
	next  uint64 // the revision the next event must have
}

type stockCheck struct {
	stock *domain.Stock
	next  uint64
}

func newVerifier() *verifier {
	return &verifier{codec: domain.NewCodec(), orders: make(map[string]*orderCheck), stocks: make(map[string]*stockCheck)}
}

// addStock folds a SKU's event into its stock, which refuses oversell and
// a reservation settled twice.
func (v *verifier) addStock(e eventstore.RecordedEvent, sku string) {
	c := v.stocks[e.Stream]
	if c == nil {
		c = &stockCheck{stock: domain.NewStock(sku)}
		v.stocks[e.Stream] = c
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
	if err := c.stock.Apply(ev.Data); err != nil {
		v.flag(e, err.Error())
	}
}

func (v *verifier) add(e eventstore.RecordedEvent) {
	v.report.Events++
	if v.onEvent != nil {
		v.onEvent(e.Position, v.report.Events)
	}
	id, ok := strings.CutPrefix(e.Stream, commands.StreamName(""))
	if !ok {
		if sku, isStock := domain.SKUOfStream(e.Stream); isStock {
			v.addStock(e, sku)
			return
		}
		v.report.Skipped++
		return
	}
	c := v.orders[e.Stream]
	if c == nil {
		c = &orderCheck{order: domain.NewOrder(id)}
		v.orders[e.Stream] = c
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
	if err := c.order.Apply(ev); err != nil {
		v.flag(e, err.Error())
	}
}

func (v *verifier) flag(e eventstore.RecordedEvent, reason string) {
	v.report.Violations = append(v.report.Violations, violation{Stream: e.Stream, Revision: e.Revision, Type: e.Type, Reason: reason})
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := newFlagSet("ordo verify [--prefix order-] [--json] [--esdb-url URL | --data DIR]",
		"Replays every stream through the domain: order streams through the lifecycle (FSM) and\n"+
			"the money invariants, stock streams (sku-…) through the stock invariants (never\n"+
			"oversold, a reservation settled once). Reports each violation with stream, revision\n"+
			"and reason; exits with status 1 if any. Progress goes to stderr; the report to stdout.",
		[]string{"ordo verify", "ordo verify --prefix order-0b9f --json", "ordo verify --esdb-url 'esdb://db1:2113?tls=false'"}, stderr)
	sf.register(fs)
	prefix := fs.String("prefix", "", "verify only streams whose name starts with this, e.g. order- or sku- (default: every stream)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("verify takes no arguments, got %q", fs.Args())}
	}
	store, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	v := newVerifier()
	prog := newProgress(stderr, "verify", 0, head)
	lastPos := uint64(0)
	if !*quiet {
		v.onEvent = func(pos uint64, n int64) {
			lastPos = pos
			if n%1024 == 0 {
				prog.update(pos, n)
			}
		}
	}
	start := time.Now()
	var filter eventstore.Filter
	if *prefix != "" {
		filter.StreamPrefixes = []string{*prefix}
	}
	err = store.ReadAll(ctx, 0, filter, func(e eventstore.RecordedEvent) error {
		if e.Position > head {
			return errPastHead
		}
		v.add(e)
		return nil
	})
	if err != nil && !errors.Is(err, errPastHead) {
		return err
	}
	rep := v.report
	rep.Streams, rep.SKUs = len(v.orders), len(v.stocks)
	rep.Seconds = time.Since(start).Seconds()
	rep.PerSecond = float64(rep.Events) / max(rep.Seconds, 1e-9)
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
		fmt.Fprintln(stdout)
	}
	if len(rep.Violations) > 0 {
		return cliError{fmt.Errorf("%d violations", len(rep.Violations))}
	}
	return nil
}

// errPastHead ends a pass at the head it measured at the start, so a
// pass over a live store ends.
var errPastHead = errors.New("past the head")
