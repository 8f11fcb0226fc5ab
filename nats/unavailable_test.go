package nats

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
)

var storeDown = Outcome{Retry: true, Error: &ErrorBody{Code: string(domain.CodeUnavailable), Message: "the event store is unavailable"}}

// untilStoreBack fails with storeDown until back is set, then succeeds.
func untilStoreBack(back *atomic.Bool) *scripted {
	return &scripted{fn: func(_ int64, cmd Command) Outcome {
		if !back.Load() {
			return storeDown
		}
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"OrderDelivered"}, State: "delivered"}
	}}
}

// awaitCalls waits until exec ran at least n times.
func awaitCalls(tb testing.TB, exec *scripted, n int64) {
	tb.Helper()
	eventually.True(tb, 20*time.Second, fmt.Sprintf("the executor to run %d times (the command kept)", n), func() bool {
		return exec.calls.Load() >= n
	})
}

// TestStoreUnavailableIsKept: a command the event store could not take
// because it is unreachable is answered "unavailable" at once, then kept
// and tried again, past MaxDeliver and AckWait, without a redelivery or a
// dead letter, and applied once the store is back; a resend with the same
// command ID gets that outcome.
func TestStoreUnavailableIsKept(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	var back atomic.Bool
	exec := untilStoreBack(&back)
	runWorker(t, nc, exec, WorkerConfig{MaxDeliver: 2, AckWait: time.Second})
	c, _ := NewClient(nc, ClientOptions{})
	cmd := command(uuid.NewString())
	cmd.ID = "kept-1"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Send(ctx, cmd); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("while the store is down: %v, want unavailable at once", err)
	}
	// Tried on for longer than MaxDeliver redeliveries and AckWait allow.
	awaitCalls(t, exec, 8)
	back.Store(true)
	out, err := c.Send(ctx, cmd)
	if err != nil || out.State != "delivered" {
		t.Fatalf("resend once the store is back: %+v, %v; want the command's outcome", out, err)
	}
	js, _ := jetstream.New(nc)
	cons, err := js.Consumer(ctx, StreamCommands, ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumRedelivered != 0 || info.NumAckPending != 0 {
		t.Fatalf("consumer: %+v, %v; want no redelivery and nothing pending", info, err)
	}
	if n := deadLetters(t, nc); n != 0 {
		t.Fatalf("%d dead letters, want none (a dead letter is never removed, so none was written during the outage either)", n)
	}
}

// TestStopWhileStoreUnavailable: a worker that keeps a command for an
// unreachable store stops at once when asked to, and the command is
// applied by the next worker once the store is back, never dead-lettered.
func TestStopWhileStoreUnavailable(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	var back atomic.Bool
	exec := untilStoreBack(&back)
	stop := runWorker(t, nc, exec, WorkerConfig{MaxDeliver: 2})
	c, _ := NewClient(nc, ClientOptions{})
	cmd := command(uuid.NewString())
	cmd.ID = "kept-2"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Send(ctx, cmd); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("while the store is down: %v, want unavailable", err)
	}
	awaitCalls(t, exec, 3)
	start := time.Now()
	stop()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the worker took %v to stop while it kept a command", took)
	}
	back.Store(true)
	next := untilStoreBack(&back)
	runWorker(t, nc, next, WorkerConfig{MaxDeliver: 2})
	for {
		out, err := c.Outcome(ctx, cmd.ID)
		if err == nil {
			if out.State != "delivered" {
				t.Fatalf("outcome after the restart: %+v", out)
			}
			break
		}
		if !errors.Is(err, ErrNoOutcome) || ctx.Err() != nil {
			t.Fatalf("no outcome after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := deadLetters(t, nc); n != 0 {
		t.Fatalf("%d dead letters, want none (a dead letter is never removed, so none was written during the outage either)", n)
	}
}

// TestQueuedBehindAKeptCommandIsKept: a command queued on the lane of a
// command kept for an unreachable store is answered "unavailable" at once
// (its requester is not left waiting for the outage to end), waits with
// the kept one however long the outage lasts (past HoldLimit and
// MaxDeliver ack waits), and is applied once the store is back, never
// redelivered to a dead letter; a resend with its command ID gets that
// outcome.
func TestQueuedBehindAKeptCommandIsKept(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	var back atomic.Bool
	exec := untilStoreBack(&back)
	// One lane: every command queues behind the kept one.
	runWorker(t, nc, exec, WorkerConfig{Shards: 1, MaxDeliver: 2, AckWait: 400 * time.Millisecond, HoldLimit: 800 * time.Millisecond})
	c, _ := NewClient(nc, ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := command(uuid.NewString())
	first.ID = "kept-first"
	if _, err := c.Send(ctx, first); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("while the store is down: %v, want unavailable at once", err)
	}
	queued := command(uuid.NewString())
	queued.ID = "kept-queued"
	sendCtx, cancelSend := context.WithTimeout(ctx, 5*time.Second)
	_, err := c.Send(sendCtx, queued)
	cancelSend()
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("a command queued behind the kept one: %v, want unavailable at once", err)
	}
	// Long past HoldLimit plus MaxDeliver ack waits.
	time.Sleep(4 * time.Second)
	calls := exec.calls.Load()
	back.Store(true)
	awaitCalls(t, exec, calls+2) // the kept command, then the queued one
	out, err := c.Send(ctx, queued)
	if err != nil || out.State != "delivered" || !out.Duplicate {
		t.Fatalf("resending the queued command once the store is back: %+v, %v; want its outcome (delivered, duplicate)", out, err)
	}
	if n := deadLetters(t, nc); n != 0 {
		t.Fatalf("%d dead letters, want none (a dead letter is never removed, so none was written during the outage either)", n)
	}
}
