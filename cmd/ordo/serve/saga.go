package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ordo-dev/ordo/commands"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// startStockAndSaga starts the stock API (one writer per SKU) and the order
// saga that reserves stock, runs payment timers and settles stock.
func (s *Service) startStockAndSaga(ctx context.Context, cfg Config, orders *commands.Service) error {
	tracer := tracerOf(cfg.TracerProvider)
	// With an external NATS, other instances may take the writer lease:
	// the lanes write only while this one holds it (see runWriter).
	s.stock = commands.NewStockService(CommandStore{Store: s.store, Tracer: tracer}, commands.StockOptions{Logger: cfg.Logger, Tracer: otelTracer{tracer},
		Fenced: cfg.NATSURL != ""})
	s.stockAPI = commands.NewStockAPI(s.stock, orders, commands.StockAPIOptions{ManualStock: cfg.ManualStock})
	s.stockClient = sync.OnceValues(func() (*ordonats.Client, error) { return ordonats.NewClient(s.nc, ordonats.ClientOptions{}) })
	// The timer checkpoints first: they open the checkpoint bucket saying
	// what they wait for while a cluster forms, so the saga's finds it.
	timerCps, err := s.timerCheckpoints(ctx, cfg)
	if err != nil {
		return err
	}
	cps, err := s.sagaCheckpoints(ctx, cfg)
	if err != nil {
		return err
	}
	saga := commands.NewSaga(orders, s.stock, ordonats.PaymentTimeouts{JS: mustJS(s.nc)}, SagaSource{Store: s.store}, cps,
		commands.SagaOptions{Logger: cfg.Logger, PaymentTimeout: cfg.PaymentTimeout, ManualStock: cfg.ManualStock, Tracer: otelTracer{tracer},
			TimerCheckpoints: timerCps})
	s.saga = saga
	// A checkpoint file is checked before anything starts; one in the
	// checkpoint bucket once the lease is held (loading claims it).
	_, shared := cps.(kvCheckpoint)
	if !shared {
		head, err := s.store.Head(ctx)
		if err != nil {
			return fmt.Errorf("read the event store's head: %w", err)
		}
		if err := saga.CheckCheckpoint(ctx, head); err != nil {
			return err
		}
	}
	if s.leases, err = ordonats.OpenLeases(ctx, mustJS(s.nc), ordonats.LeaseConfig{
		TTL: cfg.LeaseTTL, Replicas: cfg.Commands.Replicas, Logger: cfg.Logger, StartupWait: cfg.Commands.StartupWait}); err != nil {
		return err
	}
	// The supervisor starts the saga again when its subscription fails (the
	// event store restarted, the network dropped), from its checkpoint, so
	// orders never stay unreserved because of a passing outage.
	s.sagaRun = s.sup.run(partSaga, s.runWriter(cfg, saga, shared))
	// Serving starts once the stock API answers here, or another instance's.
	return s.sup.waitUpOrStandby(ctx, partSaga, "the order saga and the stock API", s.sagaRun)
}

// timerCheckpoints is where the saga keeps how far back its pending
// payment timers were started (commands.SagaOptions.TimerCheckpoints):
// next to the saga's own checkpoint, in the same kind of place.
func (s *Service) timerCheckpoints(ctx context.Context, cfg Config) (commands.Checkpoints, error) {
	file := fileCheckpoint{path: filepath.Join(cfg.DataDir, "saga-timers.checkpoint")}
	if cfg.NATSURL == "" {
		return file, nil
	}
	kv, err := ordonats.OpenCheckpointsConfig(ctx, mustJS(s.nc), ordonats.CheckpointsConfig{
		Replicas: cfg.Commands.Replicas, StartupWait: cfg.Commands.StartupWait, StartupLog: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return kvCheckpoint{ordonats.NewCheckpoint(kv, "saga-timers")}, nil
}

// registerSaga serves GET /v1/saga: how far the order saga is (position
// handled, checkpoint on disk, in flight, retries, last error).
func (s *Service) registerSaga(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/saga", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.saga.Status())
	})
}

// fileCheckpoint keeps the saga's $all position in a small file, replaced
// atomically and synced, in the data directory.
type fileCheckpoint struct{ path string }

func (f fileCheckpoint) Load(context.Context) (uint64, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pos, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s holds %q, not a position: delete it to reprocess from the start (every saga step is idempotent)", f.path, b)
	}
	return pos, nil
}

func (f fileCheckpoint) Save(_ context.Context, pos uint64) error {
	return replaceFile(f.path, []byte(strconv.FormatUint(pos, 10)+"\n"), 0o666)
}

// replaceFile replaces path with data, synced, through a rename, so a
// crash leaves the old content or the new, never a torn file. A new file
// gets perm (before the umask).
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = fh.Write(data)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp) // a full disk must not leave half-written files behind
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
