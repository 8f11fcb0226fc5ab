package nats

import (
	"hash/fnv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// lane runs the commands of the orders hashed to it one at a time, in the
// order they arrived. Its queue never blocks the consumer's callback: how
// many commands the workers hold is bounded by the consumer's
// MaxAckPending, and each must be handed to the progress tracker the
// moment it arrives rather than wait, untracked, behind a busy lane.
type lane struct {
	mu     sync.Mutex
	queue  []jetstream.Msg
	closed bool
	wake   chan struct{} // one token: work may be waiting
}

func newLane() *lane { return &lane{wake: make(chan struct{}, 1)} }

// push queues m.
func (l *lane) push(m jetstream.Msg) {
	l.mu.Lock()
	l.queue = append(l.queue, m)
	l.mu.Unlock()
	l.signal()
}

// queued is a copy of the messages waiting in the lane.
func (l *lane) queued() []jetstream.Msg {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]jetstream.Msg(nil), l.queue...)
}

// close lets run return once the queue is empty.
func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
}

func (l *lane) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run hands each queued message to handle until the lane is closed and empty.
func (l *lane) run(handle func(jetstream.Msg)) {
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			closed := l.closed
			l.queue = l.queue[:0]
			l.mu.Unlock()
			if closed {
				return
			}
			<-l.wake
			continue
		}
		m := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.mu.Unlock()
		handle(m)
	}
}

// shardOf keeps every command of one order on one lane, in order.
func shardOf(subject string, n int) int {
	id, _, _ := parseSubject(subject)
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}
