package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/cmd/relaxgc"
	"github.com/ordo-dev/ordo/commands/audit"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := flagset.New("ordo verify [--prefix order-] [--stock auto|ordo] [--json] [--esdb-url URL | --data DIR]",
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
	scope := fs.String("stock", string(audit.ScopeAuto), "whose stock the cross-stream check holds to the SKU streams: auto (decided per order from the events) or ordo (every order's: the service never ran with --manual-stock)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	if err := parseNoArgs(fs, args, "verify"); err != nil {
		return err
	}
	if s := audit.Scope(*scope); s != audit.ScopeAuto && s != audit.ScopeOrdo {
		return usageError{fmt.Sprintf("--stock must be auto or ordo, got %q", *scope)}
	}
	store, head, done, err := sf.openAtHead(ctx)
	if err != nil {
		return err
	}
	defer done()
	defer relaxgc.Set()()
	prog := newProgress(stderr, "verify", 0, head)
	lastPos := uint64(0)
	progress := func(pos uint64, n int64) {
		lastPos = pos
		if !*quiet {
			prog.update(pos, n)
		}
	}
	opts := audit.Options{Head: head, Scope: audit.Scope(*scope), Progress: progress}
	if *prefix != "" {
		opts.Prefixes = []string{*prefix}
	}
	rep, err := audit.Verify(ctx, serve.AuditStore{Store: store}, opts)
	if err != nil {
		return err
	}
	if !*quiet {
		prog.finish(max(lastPos, head), rep.Events)
	}
	if rep.Violations == nil {
		rep.Violations = []audit.Violation{}
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
