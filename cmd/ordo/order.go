package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// orderVerb is one `ordo order` verb: its flags and how it builds a command.
type orderVerb struct {
	name, args, summary string
	flags               func(fs *flag.FlagSet) func(orderID string) (domain.Command, error)
}

func orderVerbs() []orderVerb {
	return []orderVerb{
		{"place", "--customer ID --line SKU:QTY:UNIT_PRICE --currency CODE", "place an order (prints its new order ID)", flagsPlace},
		{"stock-reserved", "ORDER_ID", "record that stock is reserved (a service run with --manual-stock only)", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			return func(id string) (domain.Command, error) { return domain.MarkStockReserved{Order: id}, nil }
		}},
		{"stock-rejected", "ORDER_ID --reason R", "record that stock could not be reserved (--manual-stock only)", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			reason := fs.String("reason", "out_of_stock", "why")
			return func(id string) (domain.Command, error) {
				return domain.MarkStockRejected{Order: id, Reason: *reason}, nil
			}
		}},
		{"pay", "ORDER_ID --amount MINOR --payment-id ID [--provider NAME]", "record a payment", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			amount := fs.Int64("amount", 0, "amount in minor units (cents)")
			pid := fs.String("payment-id", "", "the provider's payment ID")
			provider := fs.String("provider", "", "payment provider")
			currency := fs.String("currency", "", "currency (default: the order's)")
			return func(id string) (domain.Command, error) {
				return domain.ConfirmPayment{Order: id, PaymentID: *pid, Amount: *amount, Currency: *currency, Provider: *provider}, nil
			}
		}},
		{"fail-payment", "ORDER_ID --payment-id ID [--reason R]", "record a failed payment attempt", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			pid := fs.String("payment-id", "", "the provider's payment ID")
			reason := fs.String("reason", "", "why it failed")
			provider := fs.String("provider", "", "payment provider")
			return func(id string) (domain.Command, error) {
				return domain.FailPayment{Order: id, PaymentID: *pid, Reason: *reason, Provider: *provider}, nil
			}
		}},
		{"cancel", "ORDER_ID [--reason R]", "cancel an order (a paid one is refunded)", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			reason := fs.String("reason", "cancelled by an operator", "why")
			return func(id string) (domain.Command, error) { return domain.CancelOrder{Order: id, Reason: *reason}, nil }
		}},
		{"ship", "ORDER_ID --carrier C --tracking T", "record the shipment", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			carrier := fs.String("carrier", "", "carrier")
			tracking := fs.String("tracking", "", "tracking number")
			return func(id string) (domain.Command, error) {
				return domain.ShipOrder{Order: id, Carrier: *carrier, TrackingNumber: *tracking}, nil
			}
		}},
		{"deliver", "ORDER_ID", "record the delivery", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			return func(id string) (domain.Command, error) { return domain.ConfirmDelivery{Order: id}, nil }
		}},
		{"complete", "ORDER_ID", "close a delivered order", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			return func(id string) (domain.Command, error) { return domain.CompleteOrder{Order: id}, nil }
		}},
		{"refund", "ORDER_ID --amount MINOR --reason R [--refund-id ID]", "open a refund", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			amount := fs.Int64("amount", 0, "amount in minor units")
			reason := fs.String("reason", "", "why")
			rid := fs.String("refund-id", "", "refund ID (default: a new UUID)")
			return func(id string) (domain.Command, error) {
				if *rid == "" {
					*rid = uuid.NewString()
				}
				return domain.RequestRefund{Order: id, RefundID: *rid, Amount: *amount, Reason: *reason}, nil
			}
		}},
		{"complete-refund", "ORDER_ID --refund-id ID", "record that a refund was paid out", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			rid := fs.String("refund-id", "", "refund ID")
			return func(id string) (domain.Command, error) { return domain.CompleteRefund{Order: id, RefundID: *rid}, nil }
		}},
		{"reject-refund", "ORDER_ID --refund-id ID --reason R", "reject a refund", func(fs *flag.FlagSet) func(string) (domain.Command, error) {
			rid := fs.String("refund-id", "", "refund ID")
			reason := fs.String("reason", "", "why")
			return func(id string) (domain.Command, error) {
				return domain.RejectRefund{Order: id, RefundID: *rid, Reason: *reason}, nil
			}
		}},
	}
}

func flagsPlace(fs *flag.FlagSet) func(string) (domain.Command, error) {
	customer := fs.String("customer", "", "customer ID")
	currency := fs.String("currency", "", "ISO 4217 currency, e.g. EUR")
	orderID := fs.String("order-id", "", "order ID (default: a new UUID)")
	var lines lineFlags
	fs.Var(&lines, "line", "an order line SKU:QTY:UNIT_PRICE_MINOR (repeat for more lines)")
	return func(string) (domain.Command, error) {
		if *orderID == "" {
			*orderID = uuid.NewString()
		}
		return domain.PlaceOrder{Order: canonicalOrderArg(*orderID), CustomerID: *customer, Currency: *currency, Lines: lines}, nil
	}
}

// canonicalOrderArg is an order ID as typed: a UUID in upper or mixed
// case names the order of its lower-case form, the one the service keeps
// (anything else is sent as it is, for the service to refuse).
func canonicalOrderArg(id string) string {
	n, _ := domain.NormalizeOrderID(strings.TrimSpace(id))
	return n
}

// lineFlags collects --line SKU:QTY:UNIT_PRICE values.
type lineFlags []domain.Line

func (l *lineFlags) String() string { return fmt.Sprint(*l) }

func (l *lineFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return fmt.Errorf("want SKU:QTY:UNIT_PRICE_MINOR, got %q", v)
	}
	qty, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return fmt.Errorf("quantity %q: %w", parts[1], err)
	}
	price, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return fmt.Errorf("unit price %q: %w", parts[2], err)
	}
	*l = append(*l, domain.Line{SKU: parts[0], Quantity: qty, UnitPrice: price})
	return nil
}

// clientFlags are the flags every verb shares.
type clientFlags struct {
	natsURL   *string
	creds     flagset.NATSCredentials
	commandID *string
	asJSON    *bool
	timeout   *time.Duration
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		natsURL:   fs.String("nats-url", "", "NATS server of the Ordo service, nats://[user:password@]host:port or tls://… (default $NATS_URL, else nats://127.0.0.1:4222)"),
		creds:     flagset.AddNATSCredentials(fs),
		commandID: fs.String("command-id", "", "command ID (default: a new UUID); reuse it to retry safely"),
		asJSON:    fs.Bool("json", false, "print the reply as JSON"),
		timeout:   fs.Duration("timeout", 10*time.Second, "how long to wait for the outcome"),
	}
}

// parseInterleaved parses flags before and after positional arguments, so
// both `pay ID --amount 5` and `pay --amount 5 ID` work.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runOrder(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printOrderUsage(stderr)
		if len(args) == 0 {
			return usageError{"order needs a verb"}
		}
		return errHelp
	}
	verb, rest := args[0], args[1:]
	if verb == "get" {
		return runOrderGet(ctx, rest, stdout, stderr)
	}
	for _, v := range orderVerbs() {
		if v.name == verb {
			return runOrderVerb(ctx, v, rest, stdout, stderr)
		}
	}
	printOrderUsage(stderr)
	return usageError{fmt.Sprintf("unknown order verb %q", verb)}
}

func printOrderUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: ordo order <verb> [ORDER_ID] [flags]   (every verb: --nats-url, --command-id, --json, --timeout)")
	fmt.Fprintln(w, "\nVerbs:")
	for _, v := range orderVerbs() {
		fmt.Fprintf(w, "  %-16s %-55s %s\n", v.name, v.args, v.summary)
	}
	fmt.Fprintf(w, "  %-16s %-55s %s\n", "get", "ORDER_ID", "show the order as its aggregate sees it")
	fmt.Fprintln(w, "\nExample:\n  id=$(ordo order place --customer c-1 --line sku-1:2:1250 --currency EUR)\n  ordo order get $id    # awaiting_payment once the saga reserved the stock\n  ordo order pay $id --amount 2500 --payment-id pay-1")
}

func runOrderVerb(ctx context.Context, v orderVerb, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordo order "+v.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	build := v.flags(fs)
	cf := addClientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ordo order %s %s\n\n%s.\n\nFlags:\n", v.name, v.args, v.summary)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	orderID := ""
	switch {
	case v.name == "place" && len(pos) > 0:
		return usageError{fmt.Sprintf("place takes no positional arguments, got %q", pos)}
	case v.name != "place" && len(pos) != 1:
		return usageError{fmt.Sprintf("%s needs exactly one ORDER_ID, got %d arguments", v.name, len(pos))}
	case v.name != "place":
		orderID = canonicalOrderArg(pos[0])
	}
	cmd, err := build(orderID)
	if err != nil {
		return usageError{err.Error()}
	}
	client, ctx, done, err := cf.dial(ctx)
	if err != nil {
		return printOutcome(stdout, ordonats.Outcome{}, err, *cf.asJSON, false)
	}
	defer done()
	opts := []ordonats.SendOption{}
	if *cf.commandID != "" {
		opts = append(opts, ordonats.WithCommandID(*cf.commandID))
	}
	out, err := client.SendCommand(ctx, cmd, opts...)
	return printOutcome(stdout, out, err, *cf.asJSON, v.name == "place")
}

// dial connects to the service at --nats-url and bounds the call by
// --timeout; done closes both. A connection that drops while a command
// waits (the service restarting with its embedded NATS) is retried every
// quarter second rather than nats.go's two, so the command is sent again
// soon after the service is back (see nats.Client.Send).
func (cf clientFlags) dial(ctx context.Context) (*ordonats.Client, context.Context, func(), error) {
	return cf.dialWith(ctx, ordonats.ClientOptions{})
}

// dialWith is dial with the client's options (a callback signer).
func (cf clientFlags) dialWith(ctx context.Context, opts ordonats.ClientOptions) (*ordonats.Client, context.Context, func(), error) {
	url := natsURL(*cf.natsURL)
	connOpts, err := cf.creds.Credentials().Options()
	if err != nil {
		return nil, nil, nil, usageError{err.Error()}
	}
	nc, err := natsgo.Connect(url, append(connOpts, natsgo.Name("ordo-cli"), natsgo.ReconnectWait(250*time.Millisecond))...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to NATS at %s (is `ordo serve` running?): %w", url, err)
	}
	c, err := ordonats.NewClient(nc, opts)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, *cf.timeout)
	return c, ctx, func() { cancel(); c.Close(); nc.Close() }, nil
}

// cliError marks an error already reported on stdout as JSON; main only
// sets the exit status.
type cliError struct{ err error }

func (e cliError) Error() string { return e.err.Error() }
func (e cliError) Unwrap() error { return e.err }

func printOutcome(w io.Writer, out ordonats.Outcome, err error, asJSON, printID bool) error {
	if asJSON {
		if err != nil && out.Error == nil {
			// Refused before the service answered: by NATS (permission
			// denied), or it did not answer at all.
			out.Error = errorBody(err)
		}
		b, _ := json.Marshal(jsonOutcome(out))
		fmt.Fprintln(w, string(b))
		if err != nil {
			return cliError{err}
		}
		return nil
	}
	if err != nil {
		return err
	}
	if printID {
		fmt.Fprintln(w, out.OrderID)
		return nil
	}
	dup := ""
	if out.Duplicate {
		dup = " (already applied; first outcome)"
	}
	fmt.Fprintf(w, "order %s: %s -> %s, revision %d%s\n", out.OrderID, strings.Join(out.Events, ", "), out.State, out.Revision, dup)
	return nil
}

// jsonOutcome is the reply object, or {"error": …} alone for a failure.
func jsonOutcome(o ordonats.Outcome) any {
	if o.Error != nil && len(o.Events) == 0 {
		return map[string]any{"error": o.Error}
	}
	if o.Events == nil {
		o.Events = []string{}
	}
	return o
}

func runOrderGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordo order get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"get needs exactly one ORDER_ID"}
	}
	client, ctx, done, err := cf.dial(ctx)
	if err != nil {
		if *cf.asJSON {
			return printJSON(stdout, nil, err)
		}
		return err
	}
	defer done()
	view, err := client.GetOrder(ctx, canonicalOrderArg(pos[0]))
	if *cf.asJSON {
		return printJSON(stdout, view, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "order %s  state %s  revision %d\n", view.OrderID, view.State, view.Revision)
	fmt.Fprintf(stdout, "customer %s  total %s  received %s  refunded %s\n", view.CustomerID, view.Total, view.Received, view.Refunded)
	for _, l := range view.Lines {
		fmt.Fprintf(stdout, "  line %s x%d @ %d\n", l.SKU, l.Quantity, l.UnitPrice)
	}
	for _, r := range view.Refunds {
		fmt.Fprintf(stdout, "  refund %s %s %s (%s)\n", r.RefundID, r.Amount, r.Status, r.Reason)
	}
	return nil
}
