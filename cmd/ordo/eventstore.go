package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/relaxgc"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// runEventstore runs the embedded EventStoreDB-compatible server on its own,
// for other services and any language's EventStoreDB client, or checks a
// stopped store's files.
func runEventstore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "Usage: ordo eventstore serve [--listen ADDR] [--data DIR] [--max-append-size BYTES] [--memory-limit SIZE] [--tls-cert FILE --tls-key FILE] [--admin-password-file FILE]\n" +
		"       ordo eventstore check [--data DIR] [--accept-loss]"
	if len(args) == 0 || (args[0] != "serve" && args[0] != "check") {
		fmt.Fprintln(stderr, usage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return usageError{"eventstore needs the subcommand serve or check"}
	}
	if args[0] == "check" {
		return runEventstoreCheck(ctx, args[1:], stdout, stderr)
	}
	fs := flagset.New("ordo eventstore serve [--listen ADDR] [--data DIR] [--max-append-size BYTES] [--memory-limit SIZE]\n"+
		"                            [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE] [--tls-ca FILE]] [--admin-password-file FILE] [--insecure]",
		"Runs the embedded EventStoreDB-compatible event store until SIGINT or SIGTERM.\n"+
			"The garbage collector runs at GOGC=400 unless GOGC is set (less CPU per append, more memory),\n"+
			"under a soft memory limit: --memory-limit, else GOMEMLIMIT, else 3/4 of the memory available.",
		[]string{"ordo eventstore serve --listen 127.0.0.1:2113 --data ./ordo-data/eventstore",
			"# then connect any EventStoreDB client to esdb://127.0.0.1:2113?tls=false",
			"ordo eventstore serve --listen 0.0.0.0:2113 --tls-cert node.pem --tls-key node-key.pem --admin-password-file pw",
			"# then esdb://admin:PASSWORD@host:2113?tls=true&tlsCAFile=ca.pem"}, stderr)
	listen := fs.String("listen", "127.0.0.1:2113", "address to serve gRPC on")
	data := fs.String("data", "./ordo-data/eventstore", "directory of the event log")
	maxAppend := fs.Int("max-append-size", esdbserver.DefaultMaxAppendSize, "largest append in bytes of event data")
	var logs logFlags
	logs.register(fs)
	var mem memoryLimit
	fs.Var(&mem, "memory-limit", "soft memory limit of the process, e.g. 2GiB, or off (default: GOMEMLIMIT if set, else 3/4 of the machine's or container's memory)")
	tlsf := addTLSServerFlags(fs, "the gRPC listener")
	pwFile := fs.String("admin-password-file", "", "file holding the admin password (or env ORDO_ESDB_ADMIN_PASSWORD); required to listen beyond loopback; on loopback the default is "+esdbserver.DefaultAdminPassword)
	insecure := fs.Bool("insecure", false, "allow listening beyond loopback without admin password and TLS")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("eventstore serve takes no arguments, got %q", fs.Args())}
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	defer relaxgc.Set()()
	defer applyMemoryLimit(mem, os.Getenv, availableMemory, log)()
	tlsCfg, err := tlsf.config()
	if err != nil {
		return err
	}
	pw, err := adminPassword(*pwFile)
	if err != nil {
		return err
	}
	// Credentials that are given are checked (the clients send them only
	// over TLS); a password the operator set is required of every caller.
	var auth *esdbserver.Auth
	if pw != "" || tlsCfg != nil {
		auth = &esdbserver.Auth{AdminPassword: pw, Required: pw != ""}
	}
	srv, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: *data, Listen: *listen, MaxAppendSize: *maxAppend, Logger: log,
		TLS: tlsCfg, TLSCAFile: *tlsf.ca, Auth: auth, Insecure: *insecure})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.URL())
	<-ctx.Done()
	log.Info("shutting down the event store")
	return srv.Close()
}

// errDamaged: ordo eventstore check found damage (exit status 1; the
// report is on stdout).
var errDamaged = errors.New("the event store is damaged")

// runEventstoreCheck is `ordo eventstore check`: it verifies every file of
// a stopped store and, with --accept-loss, lets a store that lost
// acknowledged events open with what it holds.
func runEventstoreCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagset.New("ordo eventstore check [--data DIR] [--accept-loss]",
		"Verifies every file of an event store that is not running: the record of its acknowledged\n"+
			"head, the storage engine's MANIFEST and write-ahead logs, every table block (checksums), every\n"+
			"event record and every stream index entry; then the saga's checkpoint against the store's head.\n"+
			"DIR is the store's directory or the data directory of ordo serve (its eventstore folder is\n"+
			"used). Exits with status 1 when anything is damaged. Stop the service first: a store in use\n"+
			"is refused.\n\n"+
			"--accept-loss: when the only damage is acknowledged events missing at the end of the log\n"+
			"(a truncated write-ahead log or MANIFEST), record what the store holds as its head so it\n"+
			"opens again. The lost events stay lost: restore a backup instead if you have one.",
		[]string{"ordo eventstore check", "ordo eventstore check --data /var/lib/ordo",
			"ordo eventstore check --data /var/lib/ordo --accept-loss"}, stderr)
	data := fs.String("data", "./ordo-data", "the store's directory, or the data directory of ordo serve")
	accept := fs.Bool("accept-loss", false, "let a store that lost acknowledged events open with what it holds")
	if err := parseNoArgs(fs, args, "eventstore check"); err != nil {
		return err
	}
	dir, serveDir, err := storeDir(*data)
	if err != nil {
		return err
	}
	rep, err := storage.Check(ctx, dir, storage.CheckOptions{AcceptLoss: *accept})
	if errors.Is(err, storage.ErrNoStore) {
		return errNoStore(*data)
	}
	if err != nil {
		return err
	}
	if serveDir != "" && len(rep.Problems) == 0 {
		if problem := sagaCheckpointProblem(serveDir, uint64(rep.Head)); problem != "" {
			rep.Problems = append(rep.Problems, problem)
		}
	}
	return printCheck(stdout, rep, serveDir)
}

// storeDir resolves --data: a store's own directory, or ordo serve's data
// directory holding one in eventstore/ (then serveDir is that directory).
func storeDir(data string) (dir, serveDir string, err error) {
	if ok, err := storage.Exists(data); err != nil || ok {
		return data, "", err
	}
	sub := filepath.Join(data, "eventstore")
	ok, err := storage.Exists(sub)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", errNoStore(data)
	}
	return sub, data, nil
}

// sagaCheckpointProblem reports a saga checkpoint beyond the store's head.
func sagaCheckpointProblem(serveDir string, head uint64) string {
	b, err := os.ReadFile(filepath.Join(serveDir, "saga.checkpoint"))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return fmt.Sprintf("read the saga checkpoint: %v", err)
	}
	pos, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Sprintf("%s holds %q, not a position", filepath.Join(serveDir, "saga.checkpoint"), b)
	}
	if pos <= head {
		return ""
	}
	return (&commands.CheckpointAheadError{What: "saga", Checkpoint: pos, Head: head,
		Fix: "if the store's loss was accepted, delete " + filepath.Join(serveDir, "saga.checkpoint") +
			" so the saga goes over the history again (every step is idempotent)"}).Error()
}

func printCheck(w io.Writer, rep storage.CheckReport, serveDir string) error {
	fmt.Fprintf(w, "checked %s: %d event records, %d stream index entries, head %d (acknowledged %d)\n",
		rep.Dir, rep.Records, rep.Indexed, rep.Head, rep.Acknowledged)
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "no damage found")
		return nil
	}
	fmt.Fprintln(w, "DAMAGED:")
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "  -", p)
	}
	if rep.Accepted {
		fmt.Fprintf(w, "accepted: the store opens again with the events up to position %d.\n", rep.Head)
		fmt.Fprintln(w, "Checkpoints beyond that position are refused when ordo serve starts: delete saga.checkpoint in the")
		fmt.Fprintln(w, "data directory and rebuild the read models (ordo replay --all).")
		return nil
	}
	fmt.Fprintln(w, "Restore the directory from a backup, or import an export into a new data directory (ordo import).")
	if rep.Lossy {
		fmt.Fprintln(w, "To run with the events that remain (and export them), run this command again with --accept-loss.")
	}
	return cliError{errDamaged}
}
