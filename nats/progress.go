package nats

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// progress keeps the commands a worker holds from being redelivered while
// it works on them. JetStream redelivers a command that is not
// acknowledged within the consumer's AckWait, and AckWait is short, so that
// the commands of a worker process that died are taken up again (by its
// restart or by another instance sharing the consumer) within about a
// second. A live worker therefore tells JetStream "in progress" for every
// command it has held longer than a tick: queued behind its order's
// earlier commands, executing, or waiting for its outcome to be stored.
//
// A command held longer than maxHold (WorkerConfig.HoldLimit) is no longer
// vouched for: JetStream redelivers it, as it would if the worker had hung,
// and once its deliveries run out it is answered and dead-lettered. The
// worker still finishes its own copy; executing a command twice is
// harmless.
type progress struct {
	tick    time.Duration
	maxHold time.Duration
	// waiting counts the commands the worker keeps while the event store
	// cannot be reached (unavailable.go). Meanwhile every held command is
	// vouched for past maxHold: the commands queued behind a kept one are
	// not hung, they wait for the store like it, and redelivering them would
	// only spend their deliveries and dead-letter what the store's return
	// would apply.
	waiting atomic.Int64

	mu   sync.Mutex
	held map[jetstream.Msg]time.Time // message -> when the worker received it
}

func newProgress(ackWait, maxHold time.Duration) *progress {
	return &progress{tick: ackWait / 4, maxHold: maxHold, held: make(map[jetstream.Msg]time.Time)}
}

// hold starts vouching for m.
func (p *progress) hold(m jetstream.Msg) {
	p.mu.Lock()
	p.held[m] = time.Now()
	p.mu.Unlock()
}

// release stops vouching for m, once it is acknowledged, refused or handed
// back for redelivery.
func (p *progress) release(m jetstream.Msg) {
	p.mu.Lock()
	delete(p.held, m)
	p.mu.Unlock()
}

// run signals progress every tick until stop is closed.
func (p *progress) run(stop <-chan struct{}) {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	var due []jetstream.Msg
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			due = p.due(now, due[:0])
			for _, m := range due {
				_ = m.InProgress() // fails only once acknowledged or disconnected
			}
			clear(due)
		}
	}
}

// due lists the held messages that need a progress signal now.
func (p *progress) due(now time.Time, out []jetstream.Msg) []jetstream.Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	storeDown := p.waiting.Load() > 0
	for m, since := range p.held {
		if age := now.Sub(since); age >= p.tick && (age < p.maxHold || storeDown) {
			out = append(out, m)
		}
	}
	return out
}
