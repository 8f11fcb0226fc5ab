package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventstore"
)

// storeFlags are the --esdb-url and --data flags every replay-CLI command
// shares: which event store to read.
type storeFlags struct {
	url  string
	data string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "esdb-url", "", "event store to use, e.g. esdb://127.0.0.1:2113?tls=false (default: the embedded store in --data)")
	fs.StringVar(&f.data, "data", "./ordo-data", "data directory of the embedded store, used when --esdb-url is not given")
}

// open connects to the event store the flags name. Without --esdb-url it
// uses the embedded store in --data: over loopback when `ordo serve` runs
// on that directory (it holds the files' lock and says where it listens in
// serve.json), otherwise by opening the directory itself.
func (f *storeFlags) open(ctx context.Context) (*eventstore.Store, error) {
	if f.url != "" {
		return eventstore.Connect(ctx, f.url)
	}
	if rt, ok, err := serve.ReadRuntime(f.data); err != nil {
		return nil, err
	} else if ok && rt.ESDBURL != "" {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := eventstore.Connect(cctx, rt.ESDBURL)
		cancel()
		if err == nil {
			return s, nil
		}
		// A service that crashed leaves serve.json behind; the directory is
		// then free to open.
	}
	s, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(f.data, "eventstore"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("the event store in %s is in use by another process and it did not say where it listens; "+
				"pass --esdb-url (ordo serve listens on esdb://127.0.0.1:2113?tls=false by default): %w", f.data, err)
		}
		return nil, fmt.Errorf("open the embedded event store in %s: %w", f.data, err)
	}
	return s, nil
}

// openAtHead opens the store and reads its head: the $all position a pass
// over the log (verify, export, replay) stops at, so it ends on a live store.
func (f *storeFlags) openAtHead(ctx context.Context) (*eventstore.Store, uint64, error) {
	s, err := f.open(ctx)
	if err != nil {
		return nil, 0, err
	}
	head, err := s.Head(ctx)
	if err != nil {
		s.Close()
		return nil, 0, err
	}
	return s, head, nil
}

// newFlagSet returns a flag set whose -h prints usage, a description and
// examples before the flags, so every command's --help reads the same.
func newFlagSet(usage, about string, examples []string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(usage, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", usage, about)
		if len(examples) > 0 {
			fmt.Fprintln(w, "\nExamples:")
			for _, e := range examples {
				fmt.Fprintf(w, "  %s\n", e)
			}
		}
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}
