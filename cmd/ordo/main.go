// Command ordo runs the Ordo order service and its operator tools.
//
// Every subcommand lives in a file of its own in this directory and is listed
// once in subcommands below; main only parses the first argument and hands
// over, so each subcommand can be tested by calling run with its own writers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signalContext()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// subcommand is one verb of the ordo CLI.
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// subcommands lists every verb; the order is the order of the help text.
func subcommands() []subcommand {
	return []subcommand{
		{"serve", "run the Ordo service (embedded NATS and event store by default)", runServe},
		{"order", "send order commands and read orders (a NATS client)", runOrder},
		{"stock", "add stock to a SKU and read its stock (a NATS client)", runStock},
		{"payment", "send a signed payment callback, as a payment provider does (a NATS client)", runPayment},
		{"fsm", "print the order lifecycle diagram (Mermaid or Graphviz)", runFSM},
		{"eventstore", "run the embedded EventStoreDB-compatible event store", runEventstore},
		{"replay", "rebuild the read models from the event store and swap them in", runReplay},
		{"history", "an order's timeline: every event and the state after it", runHistory},
		{"state", "an order as it was at a revision or time", runState},
		{"verify", "replay every stream through the lifecycle and invariants", runVerify},
		{"export", "write every event to a JSON Lines file", runExport},
		{"import", "append the events of an export file to a store", runImport},
		{"migrate", "copy every stream from one event store to another", runMigrate},
	}
}

// usageError marks a mistake in how the command was called; it exits with
// status 2 like the flag package does.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errHelp is returned after help text was printed on request; it exits 0,
// as does flag.ErrHelp from a subcommand's own -h.
var errHelp = errors.New("help requested")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return errHelp
	}
	for _, c := range subcommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	printUsage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Ordo: an event-sourced order state machine.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: ordo <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'ordo <command> --help' for the flags of one command.")
}

// exitCode turns run's error into the process exit status, reporting it on
// stderr: 0 for success or requested help, 2 for usage mistakes, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelp), errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "ordo:", ue.msg)
		return 2
	case errors.As(err, new(cliError)):
		return 1 // already reported on stdout
	default:
		fmt.Fprintln(stderr, "ordo:", err)
		return 1
	}
}
