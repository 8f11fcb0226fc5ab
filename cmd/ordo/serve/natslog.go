package serve

import (
	"log/slog"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// natsOutage logs the service's outages of NATS the way the event store
// adapter logs the store's: when the connection drops, once per interval
// while the reconnection attempts fail (not once per attempt, which an
// outage of minutes turns into a flood), and when it is back, with how
// long it lasted.
type natsOutage struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex
	since    time.Time // zero while connected
	lastLog  time.Time
	attempts int
}

// natsOutageLogEvery is how often a lasting NATS outage is logged again.
const natsOutageLogEvery = 10 * time.Second

func newNATSOutage(log *slog.Logger) *natsOutage {
	return &natsOutage{log: log, every: natsOutageLogEvery, now: time.Now}
}

// options are the connection's handlers.
func (o *natsOutage) options() []natsgo.Option {
	return []natsgo.Option{
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) { o.down(err) }),
		natsgo.ReconnectErrHandler(func(_ *natsgo.Conn, err error) { o.failed(err) }),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) { o.up(nc.ConnectedUrlRedacted()) }),
	}
}

func (o *natsOutage) down(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.since.IsZero() {
		return
	}
	now := o.now()
	o.since, o.lastLog, o.attempts = now, now, 0
	o.log.Warn("lost the connection to NATS; commands wait until it is back", "err", err)
}

func (o *natsOutage) failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts++
	now := o.now()
	if o.since.IsZero() || now.Sub(o.lastLog) < o.every {
		return
	}
	o.lastLog = now
	o.log.Warn("NATS still does not answer", "for", now.Sub(o.since).Round(time.Second), "attempts", o.attempts, "err", err)
}

func (o *natsOutage) up(url string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	o.log.Info("NATS answers again", "url", url, "after", o.now().Sub(o.since).Round(time.Millisecond), "attempts", o.attempts)
	o.since = time.Time{}
}
