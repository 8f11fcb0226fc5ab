package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
	"github.com/ordo-dev/ordo/projections"
)

// Several `ordo serve` instances on one NATS, one event store and one
// read-model database are one system: the command workers of every
// instance share one durable consumer, and the parts that must run once —
// the order saga and the writer of every SKU's stock — run on the instance
// that holds the lease leaseWriter; the others stand by and take over
// within about the lease's TTL when the holder dies, at once when it stops
// cleanly. Each SKU thus has one writer across the instances, so a flash
// sale stays a few large appends; should two ever write (a holder that lost
// its lease without noticing), the expected revision of every append still
// refuses the second decision on stale stock, which is decided again on
// fresh stock.
const leaseWriter = "saga-and-stock"

// leaseProjections is the lease under which the read models shared in one
// PostgreSQL database are kept current: the holder applies the events, the
// others follow its checkpoint on standby and take over as for
// leaseWriter. Each batch is fenced by the checkpoint in the database
// itself, so a holder that lost the lease without noticing cannot apply an
// event twice; the lease spares the database the work of the runners whose
// batches would be rolled back. Read models in SQLite are each instance's
// own file, kept current by each instance, without a lease.
const leaseProjections = "projections"

// projectionsGate is the read models' gate: the lease leaseProjections
// when they are shared (PostgreSQL) by instances sharing an external NATS,
// else none.
func (s *Service) projectionsGate(cfg Config) projections.Gate {
	if cfg.NATSURL == "" || !projections.IsPostgresDSN(cfg.ReadModelDSN) || s.leases == nil {
		return nil
	}
	holder := holderName(cfg.DataDir)
	return func(ctx context.Context, run func(context.Context) error) error {
		return s.leases.Hold(ctx, leaseProjections, holder, func(current string) {
			s.projectionsHolder.Store(&current)
		}, func(ctx context.Context, _ *ordonats.Lease) error {
			s.projectionsHolder.Store(nil)
			return run(ctx)
		})
	}
}

// projectionsState is the read models' part of /readyz.
func (s *Service) projectionsState(st projections.Status) string {
	switch {
	case st.Error != "" && st.Resuming:
		return "down: " + st.Error + "; retrying"
	case st.Error != "":
		return "down: " + st.Error
	case st.Standby:
		holder := "another instance"
		if h := s.projectionsHolder.Load(); h != nil {
			holder = *h
		}
		return stateStandby + ": the lease " + leaseProjections + " is held by " + holder
	}
	return stateUp
}

// holderName names this instance in the lease bucket: the host and the
// data directory, which no other running instance shares (the directory is
// locked), and which the same instance has again after a restart, so it
// takes its own lease back at once.
func holderName(dataDir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	return host + ":" + dataDir
}

// sagaCheckpoints is where the saga keeps its position: with an external
// NATS, in the checkpoint bucket where every instance reads it, starting
// from this data directory's checkpoint file when the bucket holds none
// yet; with the embedded NATS, in that file.
func (s *Service) sagaCheckpoints(ctx context.Context, cfg Config) (commands.Checkpoints, error) {
	file := fileCheckpoint{path: filepath.Join(cfg.DataDir, "saga.checkpoint")}
	if cfg.NATSURL == "" {
		return file, nil
	}
	kv, err := ordonats.OpenCheckpoints(ctx, mustJS(s.nc), cfg.Commands.Replicas)
	if err != nil {
		return nil, err
	}
	cp := ordonats.NewCheckpoint(kv, "saga")
	cp.Fallback = file.Load
	return kvCheckpoint{cp}, nil
}

// kvCheckpoint translates the bucket's fencing error to the saga's.
type kvCheckpoint struct{ cp *ordonats.Checkpoint }

func (k kvCheckpoint) Load(ctx context.Context) (uint64, error) {
	pos, err := k.cp.Load(ctx)
	return pos, fencedErr(err)
}

func (k kvCheckpoint) Save(ctx context.Context, pos uint64) error {
	return fencedErr(k.cp.Save(ctx, pos))
}

func fencedErr(err error) error {
	if errors.Is(err, ordonats.ErrCheckpointFenced) {
		return fmt.Errorf("%w: %w", commands.ErrCheckpointFenced, err)
	}
	return err
}

// runWriter is the saga's part: it waits for the writer lease (standing
// by meanwhile), then serves the stock API and runs the saga until the
// lease is lost or the service stops. The checkpoint is checked against
// the event store's head once the lease is held, so a standby never claims
// it. With an external NATS the stock lanes write only while the lease is
// held and never past its last confirmed validity: a holder that paused
// (or lost NATS) must not append a reservation its saga asked for before
// the new holder went over that order and settled its stock — the late
// reservation would hold units nobody releases.
func (s *Service) runWriter(cfg Config, saga *commands.Saga, checkAhead bool) partRun {
	holder := holderName(cfg.DataDir)
	return func(ctx context.Context, up func()) error {
		return s.leases.Hold(ctx, leaseWriter, holder, func(current string) {
			s.sup.set(partSaga, stateStandby+": the lease "+leaseWriter+" is held by "+current)
			s.sup.set(partStock, stateStandby+": served by "+current)
		}, func(ctx context.Context, lease *ordonats.Lease) error {
			defer s.stock.WriteWhile(ctx, lease.ValidUntil)() // fenced with an external NATS (startStockAndSaga)
			if checkAhead {
				head, err := s.store.Head(ctx)
				if err != nil {
					return fmt.Errorf("read the event store's head: %w", err)
				}
				var ahead *commands.CheckpointAheadError
				if err := saga.CheckCheckpoint(ctx, head); errors.As(err, &ahead) {
					return cannotGoOn(err)
				} else if err != nil {
					return err
				}
			}
			sub, err := ordonats.ServeStock(s.nc, s.stockAPI, s.log)
			if err != nil {
				return fmt.Errorf("serve the stock API: %w", err)
			}
			defer func() { _ = sub.Drain() }()
			s.sup.set(partStock, stateUp)
			up()
			err = saga.Run(ctx)
			s.sup.set(partStock, stateStarting)
			return err
		})
	}
}

// stockView reads a SKU's stock from its writer: this instance's lane when
// it holds the writer lease, else the holder's over NATS, since a lane on a
// standby would answer from stock it loaded before the holder changed it.
func (s *Service) stockView(ctx context.Context, sku string) (domain.StockView, error) {
	if s.sup.snapshot()[partStock] == stateUp {
		return s.stockAPI.Get(ctx, sku)
	}
	c, err := s.stockClient()
	if err != nil {
		return domain.StockView{}, err
	}
	view, err := c.GetStock(ctx, sku)
	var ce *ordonats.CommandError
	if errors.As(err, &ce) {
		return view, &domain.Error{Code: domain.Code(ce.Code), Message: ce.Message, Field: ce.Field}
	}
	return view, err
}
