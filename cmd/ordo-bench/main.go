// Command ordo-bench is Ordo's load generator: it measures the order
// lifecycle and a hot SKU through NATS against a running `ordo serve`, or an
// embedded one it starts, and compares them with the bare transport and
// with the classic answers (Redis+Lua, PostgreSQL) where those are
// installed. It is not part of the ordo binary.
//
//	go run ./cmd/ordo-bench lifecycle --clients 64 --duration 10s
//	go run ./cmd/ordo-bench hot-sku --duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/relaxgc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError marks a mistake in how the command was called; it exits with
// status 2 like the flag package does.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errHelp is returned after help text was printed on request; it exits 0.
var errHelp = errors.New("help requested")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The bench measures what ordo serve runs, so it collects garbage as
	// serve does.
	defer relaxgc.Set()()
	if len(args) > 0 {
		switch args[0] {
		case "lifecycle":
			return runLifecycle(ctx, args[1:], stdout, stderr)
		case "hot-sku":
			return runHotSKU(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, "Usage: ordo-bench lifecycle [--clients N] [--duration D] [--nats-url URL [NATS credential flags]] [--json]")
	fmt.Fprintln(stderr, "       ordo-bench hot-sku [--clients N] [--duration D] [--nats-url URL [NATS credential flags]] [--json]")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return errHelp
	}
	return usageError{"ordo-bench needs a workload: lifecycle or hot-sku"}
}

// connectOptions are the NATS credentials to connect with: those of the
// flags (and NATS_* variables, as for the ordo CLI) for a service given by
// --nats-url, none for the embedded one the bench starts, which takes
// anyone on loopback. The bench places orders, records payments and adds
// stock, so against a service with users it needs an operator.
func connectOptions(natsURL string, creds flagset.NATSCredentials) ([]natsgo.Option, error) {
	if natsURL == "" {
		return nil, nil
	}
	opts, err := creds.Credentials().Options()
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return slices.Clip(opts), nil // each connection appends its own name
}

// exitCode turns run's error into the process exit status, reporting it on
// stderr: 0 for success or requested help, 2 for usage mistakes, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelp), errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "ordo-bench:", ue.msg)
		return 2
	default:
		fmt.Fprintln(stderr, "ordo-bench:", err)
		return 1
	}
}
