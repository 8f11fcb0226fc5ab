package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ordo-dev/ordo/eventstore/esdbserver"
)

// runEventstore runs the embedded EventStoreDB-compatible server on its own,
// for other services and any language's EventStoreDB client.
func runEventstore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(stderr, "Usage: ordo eventstore serve [--listen ADDR] [--data DIR] [--max-append-size BYTES] [--memory-limit SIZE]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return usageError{"eventstore needs the subcommand serve"}
	}
	fs := flag.NewFlagSet("ordo eventstore serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2113", "address to serve gRPC on")
	data := fs.String("data", "./ordo-data/eventstore", "directory of the event log")
	maxAppend := fs.Int("max-append-size", esdbserver.DefaultMaxAppendSize, "largest append in bytes of event data")
	var mem memoryLimit
	fs.Var(&mem, "memory-limit", "soft memory limit of the process, e.g. 2GiB, or off (default: GOMEMLIMIT if set, else 3/4 of the machine's or container's memory)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ordo eventstore serve [--listen ADDR] [--data DIR] [--max-append-size BYTES] [--memory-limit SIZE]")
		fmt.Fprintln(fs.Output(), "\nRuns the embedded EventStoreDB-compatible event store until SIGINT or SIGTERM.")
		fmt.Fprintln(fs.Output(), "The garbage collector runs at GOGC=400 unless GOGC is set (less CPU per append, more memory),")
		fmt.Fprintln(fs.Output(), "under a soft memory limit: --memory-limit, else GOMEMLIMIT, else 3/4 of the memory available.")
		fmt.Fprintln(fs.Output(), "\nExample:\n  ordo eventstore serve --listen 127.0.0.1:2113 --data ./ordo-data/eventstore")
		fmt.Fprintln(fs.Output(), "  # then connect any EventStoreDB client to esdb://127.0.0.1:2113?tls=false")
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("eventstore serve takes no arguments, got %q", fs.Args())}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	defer relaxGC()()
	defer applyMemoryLimit(mem, os.Getenv, availableMemory, log)()
	srv, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: *data, Listen: *listen, MaxAppendSize: *maxAppend, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.URL())
	<-ctx.Done()
	log.Info("shutting down the event store")
	return srv.Close()
}
