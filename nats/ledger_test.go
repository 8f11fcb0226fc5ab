package nats

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
	"github.com/ordo-dev/ordo/logbuf"
)

// TestResendAfterUnavailableIsEvaluated: a command answered "unavailable"
// is resent with the same command ID, as the answer says to. The resend is
// not dropped (JetStream's dedupe window once swallowed it) nor answered
// with the failure: once the store is back it gets the command's outcome —
// the worker keeps a command the store could not take and applies it on
// the store's return, so the resend may find it applied already — and the
// command takes effect once. The executor here stands in for the
// aggregate: a command ID it has applied is answered as a duplicate.
func TestResendAfterUnavailableIsEvaluated(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	var down atomic.Bool
	down.Store(true)
	var applied atomic.Int64
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		if down.Load() {
			return Outcome{Retry: true, Error: &ErrorBody{Code: string(domain.CodeUnavailable), Message: "store down"}}
		}
		out := Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Revision: 3, Events: []string{"OrderDelivered"}, State: "delivered"}
		if applied.Add(1) > 1 {
			out.Duplicate = true
		}
		return out
	}}
	runWorker(t, nc, exec, WorkerConfig{MaxDeliver: 2})
	c, _ := NewClient(nc, ClientOptions{})
	cmd := command(uuid.NewString())
	cmd.ID = "deliver-" + uuid.NewString()
	send := func() (Outcome, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Send(ctx, cmd)
	}
	if _, err := send(); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("while the store is down: got %v, want unavailable", err)
	}
	if _, err := c.Outcome(context.Background(), cmd.ID); !errors.Is(err, ErrNoOutcome) {
		t.Fatalf("outcome lookup after unavailable: got %v, want ErrNoOutcome", err)
	}
	down.Store(false)
	out, err := send()
	if err != nil || out.State != "delivered" || out.Revision != 3 {
		t.Fatalf("resend once the store is back: %+v %v, want the command's outcome", out, err)
	}
	again, err := send()
	if err != nil || !again.Duplicate || again.Revision != 3 {
		t.Fatalf("resend after it was applied: %+v %v, want its first outcome as a duplicate", again, err)
	}
	if got := applied.Load(); got < 1 {
		t.Fatalf("the command was never applied")
	}
	if o, err := c.Outcome(context.Background(), cmd.ID); err != nil || o.State != "delivered" || o.Duplicate {
		t.Fatalf("stored outcome: %+v %v, want the first (not duplicate) outcome", o, err)
	}
}

// TestReusedCommandIDNeverRuns: a command ID already taken by another
// command is refused by the ledger without running the command, for a
// command with another order, type or body; the first command's outcome
// stays what it was.
func TestReusedCommandIDNeverRuns(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"OrderDelivered"}}
	}}
	runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{})
	ctx := context.Background()
	first := command(uuid.NewString())
	first.ID = "id-" + uuid.NewString()
	if _, err := c.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func(*Command)
	}{
		{"another order", func(c *Command) {
			c.OrderID = uuid.NewString()
			c.Body = []byte(`{"order_id":"` + c.OrderID + `"}`)
		}},
		{"another type", func(c *Command) { c.Type = "CompleteOrder" }},
		{"another body", func(c *Command) { c.Body = []byte(`{"order_id":"` + c.OrderID + `","note":1}`) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := first
			tt.edit(&cmd)
			calls := exec.calls.Load()
			out, err := c.Send(ctx, cmd)
			if !errors.Is(err, domain.ErrCommandIDReused) || out.OrderID != cmd.OrderID || exec.calls.Load() != calls {
				t.Fatalf("got %+v, %v after %d executions; want command_id_reused without executing", out, err, exec.calls.Load()-calls)
			}
		})
	}
	if out, err := c.Outcome(ctx, first.ID); err != nil || out.OrderID != first.OrderID || len(out.Events) != 1 {
		t.Fatalf("the first command's outcome: %+v %v", out, err)
	}
}

// TestMintedCommandIDIsRecorded: a command whose ID the client minted
// skips the ledger lookup, but its outcome is recorded under the ID, so
// reusing the ID for another command later is refused, and resending the
// command gets its first outcome.
func TestMintedCommandIDIsRecorded(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Revision: 5, Events: []string{"OrderDelivered"}}
	}}
	runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{})
	ctx := context.Background()
	first := command(uuid.NewString())
	out, err := c.Send(ctx, first)
	if err != nil || out.CommandID == "" {
		t.Fatalf("send without a command ID: %+v %v", out, err)
	}
	// The outcome is stored after the reply.
	eventually.NoError(t, 10*time.Second, "the outcome of the minted ID "+out.CommandID, func() error {
		_, err := c.Outcome(ctx, out.CommandID)
		if err != nil && !errors.Is(err, ErrNoOutcome) {
			t.Fatalf("outcome of the minted ID %s: %v", out.CommandID, err)
		}
		return err
	})
	calls := exec.calls.Load()
	other := command(uuid.NewString())
	other.ID = out.CommandID
	if _, err := c.Send(ctx, other); !errors.Is(err, domain.ErrCommandIDReused) || exec.calls.Load() != calls {
		t.Fatalf("the minted ID reused for another order: %v after %d executions, want command_id_reused", err, exec.calls.Load()-calls)
	}
	first.ID = out.CommandID
	if again, err := c.Send(ctx, first); err != nil || !again.Duplicate || again.Revision != 5 {
		t.Fatalf("the command resent under its minted ID: %+v %v, want its first outcome", again, err)
	}
}

// TestUnknownSubjectsAreAnsweredAndDeadLettered: anything published under
// ordo.cmd. that is not a command subject is answered with a clear error
// (when it says where to) and recorded as a dead letter, which is logged;
// a payment timer's schedule is left to the server.
func TestUnknownSubjectsAreAnsweredAndDeadLettered(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"X"}}
	}}
	var logs logbuf.Buffer
	runWorker(t, nc, exec, WorkerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	js := jsOf(t, nc)
	// A timer schedule far in the future: stored, never a command.
	timer := natsgo.NewMsg(SubjectTimerPrefix + uuid.NewString())
	timer.Header.Set(headerSchedule, "@at "+time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	timer.Header.Set(headerScheduleTarget, CommandSubject(uuid.NewString(), domain.CmdExpirePayment))
	timer.Data = []byte(`{}`)
	if _, err := js.PublishMsg(ctx, timer); err != nil {
		t.Fatal(err)
	}
	subjects := []string{"ordo.cmd.foo", "ordo.cmd.foo.bar.baz", "ordo.cmd.order.only-an-id", "ordo.cmd.order"}
	for _, subject := range subjects {
		inbox := nc.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		m := natsgo.NewMsg(subject)
		m.Header.Set(HeaderCommandID, "c-"+uuid.NewString())
		m.Header.Set(HeaderReplyTo, inbox)
		m.Data = []byte(`{}`)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		reply, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: no answer: %v", subject, err)
		}
		_ = sub.Unsubscribe()
		out, err := decodeOutcome(reply.Data)
		if !errors.Is(err, domain.ErrInvalidCommand) || out.Error.Field != "subject" || reply.Header.Get(HeaderStatus) != "400" ||
			!strings.Contains(out.Error.Message, SubjectCommandPrefix+"<order-id>.<CommandType>") {
			t.Fatalf("%s: answered %s (status %s), want invalid_command on field subject naming the command subjects",
				subject, reply.Data, reply.Header.Get(HeaderStatus))
		}
	}
	if n := deadLettersAtLeast(t, nc, uint64(len(subjects))); n != uint64(len(subjects)) {
		t.Fatalf("%d dead letters, want %d (the timer is not one)", n, len(subjects))
	}
	if exec.calls.Load() != 0 {
		t.Fatalf("the executor ran %d times", exec.calls.Load())
	}
	// The worker logs a dead letter after storing it.
	for _, subject := range subjects {
		eventually.True(t, 10*time.Second, "the dead letter on "+subject+" to be logged", func() bool {
			return strings.Contains(logs.String(), "subject="+subject+" ")
		})
	}
}

// deadLettersAtLeast waits until the dead-letter stream holds at least
// want messages (or 10 s pass) and returns how many it holds.
func deadLettersAtLeast(tb testing.TB, nc *natsgo.Conn, want uint64) uint64 {
	tb.Helper()
	js := jsOf(tb, nc)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := js.Stream(context.Background(), StreamDeadLetter)
		if err != nil {
			tb.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if info.State.Msgs >= want || time.Now().After(deadline) {
			return info.State.Msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLongCommandsAreNotRedelivered: with a short AckWait, a command that
// runs for several AckWaits, and the commands queued behind it on its
// order's lane, are each executed once: the worker signals progress on
// every command it holds.
func TestLongCommandsAreNotRedelivered(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	const ackWait = 300 * time.Millisecond
	var mu sync.Mutex
	runs := map[string]int{}
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		mu.Lock()
		runs[cmd.ID]++
		mu.Unlock()
		time.Sleep(2 * ackWait)
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"X"}}
	}}
	runWorker(t, nc, exec, WorkerConfig{AckWait: ackWait})
	c, _ := NewClient(nc, ClientOptions{})
	order := uuid.NewString()
	const n = 4 // the last waits three commands, six AckWaits, on its lane
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := command(order)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, errs[i] = c.Send(ctx, cmd)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, k := range runs {
		if k != 1 {
			t.Errorf("command %s ran %d times, want once", id, k)
		}
	}
	if len(runs) != n {
		t.Fatalf("%d commands ran, want %d", len(runs), n)
	}
}

func jsOf(tb testing.TB, nc *natsgo.Conn) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}
