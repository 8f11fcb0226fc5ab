package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/retry"
)

// DefaultStartupWait is how long creating or opening a JetStream resource
// at start (EnsureStreams, OpenLeases, OpenCheckpoints, the workers'
// consumer) keeps trying while NATS answers that it is not ready yet, when
// the caller sets no bound of its own.
const DefaultStartupWait = time.Minute

// Instances started together on a fresh cluster race to create the same
// replicated streams and buckets while the cluster still elects its meta
// leader and places peers: each attempt gets its own deadline so that one
// lost request does not use up the whole wait, and attempts are spread
// with jitter so racing instances do not collide again.
var (
	startupAttemptTimeout = 10 * time.Second
	startupPolicy         = retry.Policy{First: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: true}
)

// startupLogEvery is how often a wait that goes on is logged again.
const startupLogEvery = 10 * time.Second

// awaitResource runs op, which creates or opens the JetStream resource
// what, until it succeeds, fails for good (see transientStartup), ctx
// ends, or wait has passed (0: DefaultStartupWait; negative: no bound). It
// logs the first failure and then one line every startupLogEvery, saying
// what it waits for and why.
func awaitResource(ctx context.Context, log *slog.Logger, wait time.Duration, what string, op func(ctx context.Context) error) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if wait == 0 {
		wait = DefaultStartupWait
	}
	start := time.Now()
	var logged time.Time
	bounded := ctx
	if wait > 0 {
		var cancel context.CancelFunc
		bounded, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	err := retry.Do(bounded, startupPolicy, func(ctx context.Context, attempt int) error {
		actx, cancel := context.WithTimeout(ctx, startupAttemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			if attempt > 0 {
				log.Info("NATS JetStream is ready", "resource", what, "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() != nil || !transientStartup(err) {
			return retry.Permanent(err)
		}
		if logged.IsZero() || time.Since(logged) >= startupLogEvery {
			logged = time.Now()
			log.Warn("starting: waiting for NATS JetStream", "resource", what,
				"waited", time.Since(start).Round(time.Second), "give_up_after", waitText(wait), "err", err)
		}
		return err
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && bounded.Err() != nil:
		return fmt.Errorf("gave up after %v waiting for NATS JetStream to %s: %w (check that every NATS node is up and routed, and that the cluster has at least --nats-replicas JetStream nodes)",
			wait, what, err)
	case ctx.Err() == nil && !transientStartup(err):
		return configConflict(what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func waitText(wait time.Duration) string {
	if wait < 0 {
		return "never"
	}
	return wait.String()
}

// transientStartup reports whether err, from creating or looking up a
// JetStream resource, may pass by itself: NATS (re)connecting, a request
// nobody answered yet, a cluster electing its leader or still missing the
// peers to place replicas on.
func transientStartup(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, natsgo.ErrTimeout),
		errors.Is(err, natsgo.ErrNoResponders),
		errors.Is(err, natsgo.ErrDisconnected),
		errors.Is(err, natsgo.ErrConnectionReconnecting),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		// Another instance created the stream or bucket between this one's
		// update (not found) and create: the next attempt updates it, and
		// a real difference in configuration fails there.
		errors.Is(err, jetstream.ErrBucketExists):
		return true
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode {
	case 10058, // stream name in use: created meanwhile (see ErrBucketExists)
		10005, // no suitable peers for placement (peers still joining)
		10007, // JetStream cluster not assigned to this server
		10008, // JetStream system temporarily unavailable
		10009, // JetStream cluster can not handle request (no leader)
		10023, // insufficient resources
		10202: // cluster member change in progress
		return true
	}
	return api.Code == 503
}

// configConflict explains an error that retrying does not cure; a
// resource that exists with a configuration this instance cannot update
// it to is the usual one.
func configConflict(what string, err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) && (api.Code == 400 || api.ErrorCode == 10052) {
		return fmt.Errorf("%s: NATS refused it (%w): the resource probably exists with another configuration that cannot be changed in place; compare it (nats stream info / nats kv info) with this instance's flags (such as --nats-replicas), and delete it or align the flags",
			what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
