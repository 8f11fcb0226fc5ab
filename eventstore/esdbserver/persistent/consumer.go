package persistent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// ErrDropped: the server ended the consumer's subscription: the group was
// deleted or updated, the subsystem restarted, the server is shutting
// down, the source stream was deleted, or the consumer asked to stop.
var ErrDropped = errors.New("persistent subscription dropped")

// maxInFlight caps the slots a consumer may ask for: the client's buffer
// size is an int32, and every slot can hold an unacknowledged event in
// memory.
const maxInFlight = 1 << 14

// Delivery is one event sent to a consumer.
type Delivery struct {
	Event      *storage.Record // nil when a link could not be resolved
	Link       *storage.Record // the link that led to Event, if any
	RetryCount int
}

// NackAction is what a consumer asks for an event it could not handle.
type NackAction int32

// Nack actions, numbered as on the wire.
const (
	NackUnknown NackAction = iota // let the server decide: retry
	NackPark                      // park it, do not resend
	NackRetry                     // resend it
	NackSkip                      // forget it, as if handled
	NackStop                      // stop this consumer; its events are resent to others
)

// Consumer is one connected client of a group (a Read call).
type Consumer struct {
	g      *group
	id     uint64
	name   string // connection name
	from   string // peer address
	user   string
	slots  int
	joined time.Time

	// Guarded by g.mu.
	inflight   map[[16]byte]*message
	total      int64 // events sent
	lastTotal  int64 // at the last statistics read
	latencies  []time.Duration
	sentAt     map[[16]byte]time.Time // with extra statistics
	extraStats bool

	mu      sync.Mutex
	queue   []Delivery
	notify  chan struct{}
	dropped chan struct{}
	reason  error
	once    sync.Once
}

func newConsumer(g *group, id uint64, name, from, user string, slots int) *Consumer {
	return &Consumer{g: g, id: id, name: name, from: from, user: user, slots: min(max(slots, 1), maxInFlight),
		joined: time.Now(), inflight: map[[16]byte]*message{}, extraStats: g.spec.Settings.ExtraStatistics,
		sentAt: map[[16]byte]time.Time{}, notify: make(chan struct{}, 1), dropped: make(chan struct{})}
}

// SubscriptionID is EventStoreDB's ID of the group, "<stream>::<group>".
func (c *Consumer) SubscriptionID() string { return c.g.key }

// Next waits for the next event. Errors: an error wrapping ErrDropped once
// the server ended the subscription, or ctx's error.
func (c *Consumer) Next(ctx context.Context) (Delivery, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			d := c.queue[0]
			c.queue[0] = Delivery{}
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return d, nil
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.dropped:
			c.mu.Lock()
			empty := len(c.queue) == 0
			c.mu.Unlock()
			if empty {
				return Delivery{}, c.reason
			}
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		}
	}
}

// Ack reports events handled (by the IDs of their original events).
func (c *Consumer) Ack(ids [][16]byte) { c.g.ack(c, ids) }

// Nack reports events not handled, and what to do with them.
func (c *Consumer) Nack(action NackAction, reason string, ids [][16]byte) {
	c.g.nack(c, action, reason, ids)
}

// Close leaves the group: the events this consumer did not acknowledge
// are resent to the others (or to the next consumer to come).
func (c *Consumer) Close() { c.g.leave(c, nil) }

// free is how many more events the consumer may hold unacknowledged.
func (c *Consumer) free() int { return c.slots - len(c.inflight) }

// deliver queues d for Next. Called under the group's lock.
func (c *Consumer) deliver(d Delivery) {
	c.mu.Lock()
	c.queue = append(c.queue, d)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// drop ends the subscription: Next returns reason from now on. What was
// queued is discarded: the group resends it to other consumers.
func (c *Consumer) drop(reason error) {
	c.once.Do(func() {
		c.reason = reason
		c.mu.Lock()
		c.queue = nil
		c.mu.Unlock()
		close(c.dropped)
	})
}

// confirmed records that id left the consumer's hands (ack, nack,
// timeout), with its handling time for the extra statistics.
func (c *Consumer) confirmed(id [16]byte, now time.Time) {
	delete(c.inflight, id)
	if !c.extraStats {
		return
	}
	if t, ok := c.sentAt[id]; ok {
		delete(c.sentAt, id)
		if len(c.latencies) == latencyWindow {
			c.latencies = c.latencies[1:]
		}
		c.latencies = append(c.latencies, now.Sub(t))
	}
}

// latencyWindow is how many handling times the extra statistics keep.
const latencyWindow = 1000

// Measurement is one extra statistic of a consumer.
type Measurement struct {
	Key   string
	Value int64
}

// measurements are EventStoreDB's extra statistics: handling times (from
// sending to acknowledgement) in milliseconds.
func (c *Consumer) measurements() []Measurement {
	if len(c.latencies) == 0 {
		return nil
	}
	ms := make([]int64, len(c.latencies))
	var sum int64
	for i, d := range c.latencies {
		ms[i] = d.Milliseconds()
		sum += ms[i]
	}
	slices.Sort(ms)
	at := func(pct float64) int64 {
		i := int(pct / 100 * float64(len(ms)))
		return ms[min(i, len(ms)-1)]
	}
	out := []Measurement{{"Mean", sum / int64(len(ms))}, {"Median", ms[len(ms)/2]}, {"Fastest", ms[0]}}
	for i := 0; i < 5; i++ {
		out = append(out, Measurement{"Quintile " + string(rune('1'+i)), at(float64(i * 20))})
	}
	for _, p := range []struct {
		key string
		pct float64
	}{{"90%", 90}, {"95%", 95}, {"99%", 99}, {"99.5%", 99.5}, {"99.9%", 99.9}} {
		out = append(out, Measurement{p.key, at(p.pct)})
	}
	return append(out, Measurement{"Highest", ms[len(ms)-1]})
}
