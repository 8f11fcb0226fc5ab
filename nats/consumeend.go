package nats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumeEnd records why a consumption ended by itself. The client stops
// it when the server says the consumer was deleted; when the consumer's
// stream was deleted instead, the pulls just go unanswered (missing
// heartbeats), so each of those is checked against the consumer's info.
type consumeEnd struct {
	mu     sync.Mutex
	err    error
	asking bool
}

func (e *consumeEnd) check(ctx context.Context, cons jetstream.Consumer, cc jetstream.ConsumeContext, err error) {
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrBadRequest):
		e.set(err) // the client stops the consumption itself
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		e.mu.Lock()
		if e.asking {
			e.mu.Unlock()
			return
		}
		e.asking = true
		e.mu.Unlock()
		go func() {
			defer func() { e.mu.Lock(); e.asking = false; e.mu.Unlock() }()
			ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, ierr := cons.Info(ictx)
			if errors.Is(ierr, jetstream.ErrConsumerNotFound) || errors.Is(ierr, jetstream.ErrStreamNotFound) {
				e.set(ierr)
				cc.Stop()
			}
		}()
	}
}

func (e *consumeEnd) set(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

// cause is the error Run returns for a consumption that ended by itself.
func (e *consumeEnd) cause() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		return errors.New("the consumption stopped without a cause")
	}
	return fmt.Errorf("the consumption ended: %w", e.err)
}
