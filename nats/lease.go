package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketLeases holds the leases of the parts that must run once across
// every instance of a cluster (the order saga, the writer of the stock):
// one key per lease, whose value names its holder. The bucket's TTL is the
// lease's: a holder that stops renewing (it died, or lost NATS) loses the
// lease when its key expires, and a standby instance takes it.
const BucketLeases = "ORDO_LEASES"

// LeaseConfig tunes leases. The zero value is usable.
type LeaseConfig struct {
	// TTL is how long a lease lasts unless renewed (default 5s): a dead
	// holder's lease passes to a standby within about TTL. It is the
	// bucket's, so every instance must use the same.
	TTL      time.Duration
	Replicas int // of the bucket (default 1; 3 on a cluster)
	Logger   *slog.Logger
	// StartupWait bounds how long OpenLeases keeps trying while NATS is
	// not ready yet (0: DefaultStartupWait; negative: until ctx ends).
	StartupWait time.Duration
}

func (c LeaseConfig) withDefaults() LeaseConfig {
	if c.TTL <= 0 {
		c.TTL = 5 * time.Second
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Leases hands out leases from the lease bucket.
type Leases struct {
	kv  jetstream.KeyValue
	cfg LeaseConfig
}

// OpenLeases creates or opens the lease bucket.
func OpenLeases(ctx context.Context, js jetstream.JetStream, cfg LeaseConfig) (*Leases, error) {
	cfg = cfg.withDefaults()
	var kv jetstream.KeyValue
	err := awaitResource(ctx, cfg.Logger, cfg.StartupWait, "create key-value bucket "+BucketLeases, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      BucketLeases,
			Description: "Ordo leases: which instance runs each part that must run once",
			TTL:         cfg.TTL,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Leases{kv: kv, cfg: cfg}, nil
}

// Lease is a held lease. Its revision fences the holder's writes: each
// acquisition and renewal moves it, and a holder that lost the lease finds
// its revision stale.
type Lease struct {
	name, holder string
	rev          atomic.Uint64
	valid        atomic.Pointer[time.Time] // see ValidUntil
}

// newLease records a lease whose acquisition was sent at sent.
func newLease(name, holder string, rev uint64, sent time.Time, ttl time.Duration) *Lease {
	l := &Lease{name: name, holder: holder}
	l.confirm(rev, sent, ttl)
	return l
}

// confirm records a write of the key, sent at sent, that the server
// accepted: the key lives at least ttl from then.
func (l *Lease) confirm(rev uint64, sent time.Time, ttl time.Duration) {
	l.rev.Store(rev)
	until := sent.Add(ttl * 4 / 5)
	l.valid.Store(&until)
}

// Revision is the lease key's revision as last written by its holder.
func (l *Lease) Revision() uint64 { return l.rev.Load() }

// ValidUntil is when the holder must stop acting under the lease unless a
// renewal gets through first: 4/5 of the TTL after the last acquisition or
// renewal that the server accepted was sent. The server counts the key's
// TTL from when it received that write, later than it was sent, so no other
// instance can take the lease before this time plus TTL/5 — the margin left
// for a write started just before it to land. A holder that was stopped
// (SIGSTOP, a long pause) finds it past when it resumes, before it learns
// that the lease passed. It is read on the monotonic clock, immune to wall
// clock steps.
func (l *Lease) ValidUntil() time.Time { return *l.valid.Load() }

// ErrLeaseLost: the lease passed to another holder (or expired) while
// its holder worked under it.
var ErrLeaseLost = errors.New("the lease was lost")

// Hold waits until holder holds the lease name, then runs fn under it
// with a context that ends when the lease is lost, and releases the lease
// when fn returns, so a standby takes over at once after a clean stop.
// While another holder has the lease, Hold calls standby with its name
// (once per change) and tries again every TTL/5. Hold returns fn's error,
// or ErrLeaseLost (wrapped) if the lease was lost first, or ctx's error.
//
// A holder that starts again under the same name (the same instance,
// restarted) takes its own lease back at once instead of waiting for it to
// expire.
func (ls *Leases) Hold(ctx context.Context, name, holder string, standby func(current string), fn func(ctx context.Context, l *Lease) error) error {
	l, err := ls.acquire(ctx, name, holder, standby)
	if err != nil {
		return err
	}
	ls.cfg.Logger.Info("lease acquired", "lease", name, "holder", holder, "revision", l.Revision())
	lctx, lose := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		ls.renew(lctx, l, lose)
	}()
	err = fn(lctx, l)
	lost := context.Cause(lctx)
	lose(nil)
	<-renewed
	if errors.Is(lost, ErrLeaseLost) {
		return fmt.Errorf("lease %s: %w", name, lost)
	}
	ls.release(l)
	return err
}

func (ls *Leases) acquire(ctx context.Context, name, holder string, standby func(string)) (*Lease, error) {
	every := ls.cfg.TTL / 5
	seen := ""
	for {
		sent := time.Now()
		rev, err := ls.kv.Create(ctx, name, []byte(holder))
		if err == nil {
			return newLease(name, holder, rev, sent, ls.cfg.TTL), nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ls.cfg.Logger.Warn("lease: the lease bucket did not answer; trying again", "lease", name, "err", err)
		} else if e, gerr := ls.kv.Get(ctx, name); gerr == nil {
			current := string(e.Value())
			if current == holder {
				// Our own lease from before a restart: take it back, fenced
				// by its revision (a standby that took it meanwhile wins).
				sent := time.Now()
				if rev, uerr := ls.kv.Update(ctx, name, []byte(holder), e.Revision()); uerr == nil {
					return newLease(name, holder, rev, sent, ls.cfg.TTL), nil
				}
			} else if current != seen {
				seen = current
				if standby != nil {
					standby(current)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(every):
		}
	}
}

// renew renews the lease every TTL/5 until ctx ends, and ends it (lose)
// when the lease passed to another holder, or when no renewal got through
// for 4/5 of the TTL: the key may expire on the server any moment after
// that, so the holder stops acting before anyone else can start.
func (ls *Leases) renew(ctx context.Context, l *Lease, lose context.CancelCauseFunc) {
	every := ls.cfg.TTL / 5
	last := time.Now() // the acquisition was sent before this
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, every)
		rev, err := ls.kv.Update(rctx, l.name, []byte(l.holder), l.Revision())
		cancel()
		switch {
		case err == nil:
			l.confirm(rev, sent, ls.cfg.TTL)
			last = sent
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			ls.cfg.Logger.Error("lease lost to another holder", "lease", l.name, "holder", l.holder, "err", err)
			lose(fmt.Errorf("%w: another instance holds it now", ErrLeaseLost))
			return
		}
		if time.Since(last) >= ls.cfg.TTL*4/5 {
			ls.cfg.Logger.Error("lease lost: not renewed in time", "lease", l.name, "holder", l.holder, "err", err)
			lose(fmt.Errorf("%w: not renewed for %v (%v)", ErrLeaseLost, time.Since(last).Round(time.Millisecond), err))
			return
		}
		ls.cfg.Logger.Warn("lease: renewal failed; trying again", "lease", l.name, "err", err)
	}
}

// release deletes the lease if it is still this holder's.
func (ls *Leases) release(l *Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), ls.cfg.TTL)
	defer cancel()
	if err := ls.kv.Delete(ctx, l.name, jetstream.LastRevision(l.Revision())); err != nil {
		ls.cfg.Logger.Warn("lease: release failed; it expires by itself", "lease", l.name, "err", err)
		return
	}
	ls.cfg.Logger.Info("lease released", "lease", l.name, "holder", l.holder)
}
