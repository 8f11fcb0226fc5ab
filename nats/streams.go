package nats

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the JetStream resources; public API for non-Go clients.
const (
	StreamCommands   = "ORDO_COMMANDS"        // commands, Limits retention
	StreamDeadLetter = "ORDO_DEADLETTER"      // commands that could not be processed, with the reason
	BucketOutcomes   = "ORDO_OUTCOMES"        // command ID -> outcome JSON
	ConsumerWorkers  = "ordo-command-workers" // durable pull consumer of the workers
)

// Config sizes the JetStream resources. The zero value is usable.
type Config struct {
	// DedupeWindow is how long JetStream drops a second publish with the
	// same Nats-Msg-Id (default 2m): a publish retried within one send,
	// which takes seconds. Senders give every send its own message ID;
	// resends of a command ID are judged by the workers (see ledger.go),
	// not dropped. JetStream keeps every message ID of the window in
	// memory, so a longer window costs memory at high rates.
	DedupeWindow time.Duration
	// MaxAge is how long commands stay in the stream (default 24h). It must
	// exceed the dedupe window: the dedupe map is rebuilt from stored
	// messages after a restart.
	MaxAge time.Duration
	// OutcomeTTL is how long outcomes stay retrievable by command ID
	// (default 7 days), and so how long a command ID reused for another
	// order is recognised (within one order, its events keep it for good).
	OutcomeTTL time.Duration
	// MaxPayload is the largest command body accepted (default 64 KiB).
	MaxPayload int
	// Replicas for the streams and bucket (default 1; use 3 on a cluster).
	Replicas int
	// StartupWait bounds how long EnsureStreams (and the workers, for
	// their consumer) keep trying while NATS is not ready yet, such as a
	// cluster that still forms or another instance creating the same
	// streams (0: DefaultStartupWait; negative: until the context ends).
	StartupWait time.Duration
	// StartupLog is told, every 10s, what a start waits for; nil: nobody.
	StartupLog *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 2 * time.Minute
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.MaxAge <= c.DedupeWindow {
		c.MaxAge = 2 * c.DedupeWindow
	}
	if c.OutcomeTTL <= 0 {
		c.OutcomeTTL = 7 * 24 * time.Hour
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 64 << 10
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	return c
}

// EnsureStreams creates or updates the command stream, the dead-letter
// stream and the outcome bucket. It is idempotent.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg = cfg.withDefaults()
	streams := []jetstream.StreamConfig{{
		Name:        StreamCommands,
		Description: "Ordo commands: durable before they are processed",
		Subjects:    []string{SubjectCommands},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.DedupeWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		// Commands up to 16× the accepted size are stored so the workers can
		// answer them with payload_too_large and keep a dead letter; beyond
		// that JetStream refuses the publish itself.
		MaxMsgSize:        int32(16 * cfg.MaxPayload),
		AllowMsgSchedules: true,
	}, {
		Name:        StreamDeadLetter,
		Description: "Ordo commands that could not be processed, with the reason",
		Subjects:    []string{SubjectDeadPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}}
	for _, sc := range streams {
		if err := awaitResource(ctx, cfg.StartupLog, cfg.StartupWait, "create stream "+sc.Name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, sc)
			return err
		}); err != nil {
			return err
		}
	}
	return awaitResource(ctx, cfg.StartupLog, cfg.StartupWait, "create key-value bucket "+BucketOutcomes, func(ctx context.Context) error {
		_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      BucketOutcomes,
			Description: "Ordo command outcomes by command ID",
			TTL:         cfg.OutcomeTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		})
		return err
	})
}
