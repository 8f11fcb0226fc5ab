package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/domain"
)

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := flagset.New("ordo history ORDER_ID [--json] [--esdb-url URL | --data DIR]",
		"Prints the order's timeline: every event with its revision, time, type, key fields,\n"+
			"command and correlation IDs, and the lifecycle state after it. Events that cannot be\n"+
			"decoded or that break the lifecycle are shown with the reason.",
		[]string{"ordo history 0b9f2c1e-…", "ordo history 0b9f2c1e-… --json | jq '.[] | select(.type==\"PaymentSucceeded\")'",
			"ordo history 0b9f2c1e-… --esdb-url 'esdb://db1:2113?tls=false'"}, stderr)
	sf.register(fs)
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{fmt.Sprintf("history needs exactly one ORDER_ID, got %q", pos)}
	}
	store, done, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	steps, err := audit.Timeline(ctx, serve.AuditStore{Store: store}, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(steps, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REV\tTIME\tEVENT\tSTATE\tDETAILS\tCOMMAND\tCORRELATION")
	for _, s := range steps {
		details := describe(s.Data)
		if s.Problem != "" {
			details = "!! " + s.Problem + "  " + details
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Revision, s.Time.UTC().Format("2006-01-02 15:04:05.000"), s.Type,
			stateOrNone(s.State), details, orDash(s.CommandID), orDash(s.CorrelationID))
	}
	return tw.Flush()
}

func stateOrNone(s domain.State) string {
	if s == domain.StateNone {
		return "(none)"
	}
	return string(s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describe renders an event payload's fields as key=value pairs, lists as
// their length, so a timeline row stays on one line whatever the schema.
func describe(data json.RawMessage) string {
	var fields map[string]any
	if json.Unmarshal(data, &fields) != nil {
		return string(data)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if k == "order_id" { // the stream says it
			continue
		}
		switch v := fields[k].(type) {
		case []any:
			parts = append(parts, fmt.Sprintf("%s=[%d]", k, len(v)))
		case map[string]any:
			if amount, ok := v["amount"].(float64); ok && len(v) == 2 && v["currency"] != nil {
				parts = append(parts, fmt.Sprintf("%s=%.0f %v", k, amount, v["currency"]))
				continue
			}
			b, _ := json.Marshal(v)
			parts = append(parts, fmt.Sprintf("%s=%s", k, b))
		case string:
			if v != "" {
				parts = append(parts, k+"="+v)
			}
		case nil:
		default:
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func runState(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := flagset.New("ordo state ORDER_ID --at REVISION|TIME [--esdb-url URL | --data DIR]",
		"Prints the order as it was at a point of its history: after the event with stream\n"+
			"revision REVISION, or after the last event at or before TIME (RFC 3339, e.g.\n"+
			"2026-11-24T09:30:00Z, or a date 2026-11-24 meaning its start in UTC).\n"+
			"Without --at, the order as it is now.",
		[]string{"ordo state 0b9f2c1e-… --at 3", "ordo state 0b9f2c1e-… --at 2026-11-24T09:30:00Z --json"}, stderr)
	sf.register(fs)
	at := fs.String("at", "", "stream revision, or time in RFC 3339")
	asJSON := fs.Bool("json", false, "print the order as JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{fmt.Sprintf("state needs exactly one ORDER_ID, got %q", pos)}
	}
	stop, atRev, err := parseAt(*at)
	if err != nil {
		return err
	}
	store, done, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	var last audit.Step
	var problems []string
	order, err := audit.Replay(ctx, serve.AuditStore{Store: store}, pos[0], stop, func(s audit.Step) {
		last = s
		if s.Problem != "" {
			problems = append(problems, fmt.Sprintf("revision %d (%s): %s", s.Revision, s.Type, s.Problem))
		}
	})
	if err != nil {
		return err
	}
	if order.Revision() < 0 && last.Type == "" {
		return fmt.Errorf("order %s had no events at %s; its first event is later", pos[0], *at)
	}
	if atRev >= 0 && uint64(atRev) > last.Revision {
		return fmt.Errorf("order %s has no revision %d: its last event is revision %d (ordo history %s lists them)",
			pos[0], atRev, last.Revision, pos[0])
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, "warning: skipped", p)
	}
	view := order.View()
	if *asJSON {
		b, err := json.MarshalIndent(struct {
			domain.OrderView
			AtRevision uint64    `json:"at_revision"`
			AtTime     time.Time `json:"at_time"`
		}{view, last.Revision, last.Time}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	fmt.Fprintf(stdout, "order %s  state %s  at revision %d (%s, %s)\n", view.OrderID, stateOrNone(view.State), last.Revision,
		last.Type, last.Time.UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "customer %s  total %s  received %s  refunded %s  refund pending %s\n", view.CustomerID, view.Total, view.Received, view.Refunded, view.Pending)
	for _, l := range view.Lines {
		fmt.Fprintf(stdout, "  line %s x%d @ %d\n", l.SKU, l.Quantity, l.UnitPrice)
	}
	if p := view.Payment; p != nil {
		b, _ := json.Marshal(p)
		fmt.Fprintf(stdout, "  payment %s\n", b)
	}
	if sh := view.Shipment; sh != nil {
		b, _ := json.Marshal(sh)
		fmt.Fprintf(stdout, "  shipment %s\n", b)
	}
	for _, r := range view.Refunds {
		fmt.Fprintf(stdout, "  refund %s %s %s (%s)\n", r.RefundID, r.Amount, r.Status, r.Reason)
	}
	if view.Cancelled != "" {
		fmt.Fprintf(stdout, "  cancelled: %s\n", view.Cancelled)
	}
	return nil
}

// parseAt turns --at into a test that is true for the first event past
// it, and the revision it names (-1 for a time, or no --at).
func parseAt(at string) (func(audit.Step) bool, int64, error) {
	if at == "" {
		return nil, -1, nil
	}
	if rev, err := strconv.ParseInt(at, 10, 64); err == nil && rev >= 0 {
		return func(s audit.Step) bool { return s.Revision > uint64(rev) }, rev, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, at); err == nil {
			// The same time history shows: the event's own, or the store's.
			return func(s audit.Step) bool { return s.Time.After(t) }, -1, nil
		}
	}
	return nil, -1, usageError{fmt.Sprintf("--at %q is neither a stream revision (0, 1, …) nor a time (RFC 3339, e.g. 2026-11-24T09:30:00Z)", at)}
}
