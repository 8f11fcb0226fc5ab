package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/datadir"
	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
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

// open connects to the event store the flags name, which must exist: a
// command that reads must never create a store. Without --esdb-url it
// uses the embedded store in --data: over loopback when `ordo serve` runs
// on that directory (it holds the directory's lock and says where it
// listens in serve.json), otherwise by locking the directory and opening
// the store itself. done closes the store and releases the lock.
func (f *storeFlags) open(ctx context.Context) (store *eventstore.Store, done func(), err error) {
	return f.connect(ctx, false)
}

// openOrCreate is open for a command that writes (import): it creates the
// data directory and an empty store when there is none.
func (f *storeFlags) openOrCreate(ctx context.Context) (store *eventstore.Store, done func(), err error) {
	return f.connect(ctx, true)
}

func (f *storeFlags) connect(ctx context.Context, create bool) (*eventstore.Store, func(), error) {
	if f.url != "" {
		s, err := eventstore.Connect(ctx, f.url)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	}
	if rt, ok, err := serve.ReadRuntime(f.data); err != nil {
		return nil, nil, err
	} else if ok && rt.ESDBURL != "" {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := eventstore.Connect(cctx, rt.ESDBURL)
		cancel()
		if err == nil {
			return s, func() { s.Close() }, nil
		}
		// A service that crashed leaves serve.json behind; the directory is
		// then free to open.
	}
	dir := filepath.Join(f.data, "eventstore")
	if create {
		if err := os.MkdirAll(f.data, 0o755); err != nil {
			return nil, nil, fmt.Errorf("create data directory %s: %w", f.data, err)
		}
	} else if exists, err := storage.Exists(dir); err != nil {
		return nil, nil, err
	} else if !exists {
		return nil, nil, errNoStore(f.data)
	}
	lock, err := datadir.Acquire(f.data)
	if err != nil {
		if errors.Is(err, datadir.ErrInUse) {
			return nil, nil, fmt.Errorf("%w; stop it, or pass --esdb-url to use the event store it serves", err)
		}
		return nil, nil, err
	}
	s, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		lock.Unlock()
		return nil, nil, fmt.Errorf("open the embedded event store in %s: %w", f.data, err)
	}
	return s, func() { s.Close(); lock.Unlock() }, nil
}

// errNoStore: a command that reads found no event store to read. It is
// a usage mistake (exit status 2): the wrong directory, or a missing flag.
func errNoStore(data string) error {
	return usageError{fmt.Sprintf("no event store at %s (use --data or --esdb-url)", data)}
}

// openAtHead opens the store and reads its head: the $all position a pass
// over the log (verify, export, replay) stops at, so it ends on a live store.
func (f *storeFlags) openAtHead(ctx context.Context) (*eventstore.Store, uint64, func(), error) {
	s, done, err := f.open(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	head, err := s.Head(ctx)
	if err != nil {
		done()
		return nil, 0, nil, err
	}
	return s, head, done, nil
}

// parseNoArgs parses the flags of a command that takes no positional
// arguments, wherever they stand, and refuses any argument left over.
func parseNoArgs(fs *flag.FlagSet, args []string, command string) error {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("%s takes no arguments, got %q", command, pos)}
	}
	return nil
}
