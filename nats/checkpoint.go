package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketCheckpoints holds the positions of the parts that run once across
// the instances (the order saga's), where every instance can read them:
// the one that takes a part over resumes where the last holder got.
const BucketCheckpoints = "ORDO_CHECKPOINTS"

// OpenCheckpoints creates or opens the checkpoint bucket, waiting up to
// DefaultStartupWait while NATS is not ready yet, silently.
func OpenCheckpoints(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return OpenCheckpointsConfig(ctx, js, CheckpointsConfig{Replicas: replicas})
}

// CheckpointsConfig is how OpenCheckpointsConfig opens the bucket.
type CheckpointsConfig struct {
	Replicas int // of the bucket (default 1; 3 on a cluster)
	// StartupWait bounds how long it keeps trying while NATS is not ready
	// yet (0: DefaultStartupWait; negative: until the context ends), and
	// StartupLog is told every 10s what it waits for (nil: nobody).
	StartupWait time.Duration
	StartupLog  *slog.Logger
}

// OpenCheckpointsConfig creates or opens the checkpoint bucket.
func OpenCheckpointsConfig(ctx context.Context, js jetstream.JetStream, cfg CheckpointsConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := awaitResource(ctx, cfg.StartupLog, cfg.StartupWait, "create key-value bucket "+BucketCheckpoints, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      BucketCheckpoints,
			Description: "Ordo checkpoints of the parts that run once across instances",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    max(cfg.Replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return kv, nil
}

// ErrCheckpointFenced: another instance took the part over and wrote its
// checkpoint since this one read it; this one must stop.
var ErrCheckpointFenced = errors.New("another instance took over: the checkpoint was written since it was read")

// Checkpoint is one part's position in the checkpoint bucket, fenced:
// Load claims it (writes it back, moving its revision), and Save writes
// only over the revision this holder wrote last. When a new holder takes
// the part over and loads the checkpoint, every later Save of the old
// holder fails with ErrCheckpointFenced, so a holder that lost its lease
// without noticing yet can never move the position back.
type Checkpoint struct {
	kv  jetstream.KeyValue
	key string
	rev uint64 // the key's revision as this holder last wrote it; 0: none yet
	// Fallback gives the position to start from when the bucket holds none
	// yet (the checkpoint file of a single instance that joins a cluster).
	Fallback func(ctx context.Context) (uint64, error)
}

// NewCheckpoint returns the checkpoint key of kv. Use one per holder and
// part: Load and Save must not run concurrently.
func NewCheckpoint(kv jetstream.KeyValue, key string) *Checkpoint {
	return &Checkpoint{kv: kv, key: key}
}

// Load reads the position and claims the key for this holder.
func (c *Checkpoint) Load(ctx context.Context) (uint64, error) {
	var pos uint64
	// A bucket just created on a cluster that is still forming may not
	// answer at once (no responders): that is waited out, not a failure.
	var e jetstream.KeyValueEntry
	err := awaitResource(ctx, nil, 0, "read checkpoint "+c.key, func(ctx context.Context) (err error) {
		e, err = c.kv.Get(ctx, c.key)
		return err // ErrKeyNotFound is not transient: it ends the wait
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if c.Fallback != nil {
			if pos, err = c.Fallback(ctx); err != nil {
				return 0, err
			}
		}
		rev, err := c.kv.Create(ctx, c.key, encodePosition(pos))
		if err != nil {
			return 0, fmt.Errorf("claim checkpoint %s: %w", c.key, fenced(err))
		}
		c.rev = rev
		return pos, nil
	case err != nil:
		return 0, err
	}
	if pos, err = strconv.ParseUint(strings.TrimSpace(string(e.Value())), 10, 64); err != nil {
		return 0, fmt.Errorf("checkpoint %s in bucket %s holds %q, not a position: delete the key to start from the beginning (every step is idempotent)",
			c.key, BucketCheckpoints, e.Value())
	}
	rev, err := c.kv.Update(ctx, c.key, encodePosition(pos), e.Revision())
	if err != nil {
		return 0, fmt.Errorf("claim checkpoint %s: %w", c.key, fenced(err))
	}
	c.rev = rev
	return pos, nil
}

// Save writes pos over this holder's last write, or fails with
// ErrCheckpointFenced when another holder claimed the key since.
func (c *Checkpoint) Save(ctx context.Context, pos uint64) error {
	if c.rev == 0 {
		return fmt.Errorf("save checkpoint %s: %w", c.key, ErrCheckpointFenced)
	}
	rev, err := c.kv.Update(ctx, c.key, encodePosition(pos), c.rev)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", c.key, fenced(err))
	}
	c.rev = rev
	return nil
}

func encodePosition(pos uint64) []byte { return []byte(strconv.FormatUint(pos, 10)) }

// fenced maps a lost compare-and-set to ErrCheckpointFenced.
func fenced(err error) error {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%w (%v)", ErrCheckpointFenced, err)
	}
	return err
}
