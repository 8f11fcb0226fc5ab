package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
)

func startServer(t testing.TB, dir string) *EmbeddedServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func connect(t testing.TB, s *EmbeddedServer) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestEmbeddedServer(t *testing.T) {
	if _, err := StartEmbedded(context.Background(), EmbeddedConfig{Listen: "127.0.0.1:0"}); err == nil {
		t.Fatal("an empty StoreDir must be refused")
	}
	dir := t.TempDir()
	s := startServer(t, dir)
	nc := connect(t, s)
	js, _ := jetstream.New(nc)
	if err := EnsureStreams(context.Background(), js, Config{}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(context.Background(), js, Config{}); err != nil {
		t.Fatalf("EnsureStreams is not idempotent: %v", err)
	}
	if _, err := js.Publish(context.Background(), CommandSubject(uuid.NewString(), "X"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown(context.Background())
	// A restart on the same directory keeps the stream and its message.
	s2 := startServer(t, dir)
	js2, _ := jetstream.New(connect(t, s2))
	st, err := js2.Stream(context.Background(), StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(context.Background()); info.State.Msgs != 1 {
		t.Fatalf("after restart the command stream holds %d messages, want 1", info.State.Msgs)
	}
}

// scripted is an executor whose behaviour the test sets per call.
type scripted struct {
	calls atomic.Int64
	fn    func(n int64, cmd Command) Outcome
}

func (s *scripted) Execute(_ context.Context, cmd Command) Outcome {
	return s.fn(s.calls.Add(1), cmd)
}

func (s *scripted) Fingerprint(cmd Command) (string, error) { return rawFingerprint(cmd), nil }

// rawFingerprint stands in for commands.Fingerprint in this package's
// tests: the order, type and body exactly as sent.
func rawFingerprint(cmd Command) string {
	sum := sha256.Sum256([]byte(cmd.OrderID + "\n" + cmd.Type + "\n" + string(cmd.Body)))
	return hex.EncodeToString(sum[:16])
}

func runWorker(t testing.TB, nc *natsgo.Conn, exec Executor, cfg WorkerConfig) (stop func()) {
	t.Helper()
	w, err := NewWorker(nc, exec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func command(orderID string) Command {
	return Command{Type: "ConfirmDelivery", OrderID: orderID, Body: []byte(`{"order_id":"` + orderID + `"}`)}
}

func TestPanickingExecutorIsAnsweredAndDeadLettered(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &scripted{fn: func(int64, Command) Outcome { panic("boom") }}
	runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{})
	_, err := c.Send(context.Background(), command(uuid.NewString()))
	if !errors.Is(err, domain.ErrInternal) {
		t.Fatalf("panicking handler: got %v, want internal", err)
	}
	if n := deadLetters(t, nc); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	if exec.calls.Load() != 1 {
		t.Fatalf("executor called %d times; a panicking command must not be redelivered", exec.calls.Load())
	}
}

func TestTransientFailuresRedeliverThenDeadLetter(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	// A transient failure other than an unreachable event store (which is
	// kept until the store answers: unavailable_test.go).
	transient := Outcome{Retry: true, Error: &ErrorBody{Code: string(domain.CodeInternal), Message: "the store refused the write"}}
	// Fails twice, then succeeds: redelivered, answered once with success.
	exec := &scripted{fn: func(n int64, cmd Command) Outcome {
		if n <= 2 {
			return transient
		}
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"OrderDelivered"}, State: "delivered"}
	}}
	stop := runWorker(t, nc, exec, WorkerConfig{MaxDeliver: 4})
	c, _ := NewClient(nc, ClientOptions{})
	out, err := c.Send(context.Background(), command(uuid.NewString()))
	if err != nil || out.State != "delivered" || exec.calls.Load() != 3 {
		t.Fatalf("after two transient failures: %+v %v (%d calls)", out, err, exec.calls.Load())
	}
	stop()
	// Always failing: after MaxDeliver attempts the requester gets
	// "unavailable" and the command is a dead letter.
	always := &scripted{fn: func(int64, Command) Outcome { return transient }}
	runWorker(t, nc, always, WorkerConfig{MaxDeliver: 3})
	_, err = c.Send(context.Background(), command(uuid.NewString()))
	if !errors.Is(err, domain.ErrUnavailable) || always.calls.Load() != 3 {
		t.Fatalf("always failing: %v after %d calls, want unavailable after 3", err, always.calls.Load())
	}
	if n := deadLetters(t, nc); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}

func TestOutcomeSurvivesLostReply(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	release := make(chan struct{})
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		<-release
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"OrderDelivered"}}
	}}
	runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{})
	cmd := command(uuid.NewString())
	cmd.ID = "lost-reply-1"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := c.Send(ctx, cmd)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline to pass first", err)
	}
	close(release)
	eventually.NoError(t, 10*time.Second, "the outcome of the command", func() error {
		out, err := c.Outcome(context.Background(), cmd.ID)
		if err == nil && len(out.Events) != 1 || err != nil && !errors.Is(err, ErrNoOutcome) {
			t.Fatalf("outcome lookup: %+v %v", out, err)
		}
		return err
	})
	// Resending the same ID is answered from the outcome, not executed again.
	if out, err := c.Send(context.Background(), cmd); err != nil || !out.Duplicate || exec.calls.Load() != 1 {
		t.Fatalf("resend: %+v %v (%d executions)", out, err, exec.calls.Load())
	}
}

func TestDrainOnShutdown(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	started := make(chan struct{}, 8)
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		started <- struct{}{}
		time.Sleep(200 * time.Millisecond)
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"X"}}
	}}
	stop := runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{})
	errc := make(chan error, 1)
	go func() { _, err := c.Send(context.Background(), command(uuid.NewString())); errc <- err }()
	<-started
	stop() // while the command is in flight
	if err := <-errc; err != nil {
		t.Fatalf("the in-flight command was not answered during shutdown: %v", err)
	}
}

func deadLetters(tb testing.TB, nc *natsgo.Conn) uint64 {
	tb.Helper()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := js.Stream(context.Background(), StreamDeadLetter)
		if err != nil {
			tb.Fatal(err)
		}
		info, _ := st.Info(context.Background())
		if info.State.Msgs > 0 || time.Now().After(deadline) {
			return info.State.Msgs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMaxDeliveriesAdvisory: a command whose handler never finishes in time
// (as when a worker process dies on it every time) runs out of deliveries;
// the advisory is picked up, the requester is answered and a dead letter
// recorded.
func TestMaxDeliveriesAdvisory(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	release := make(chan struct{})
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		<-release
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"X"}}
	}}
	runWorker(t, nc, exec, WorkerConfig{MaxDeliver: 2, AckWait: 300 * time.Millisecond})
	defer close(release)
	c, _ := NewClient(nc, ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.Send(ctx, command(uuid.NewString()))
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("a command that exhausted its deliveries: got %v, want unavailable", err)
	}
	if n := deadLetters(t, nc); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}

// TestOutcomeStoredThenAcked: the workers store an outcome by publishing
// to the bucket's subject themselves (without waiting on the order's lane);
// it must land where KeyValue.Get finds it, equal to the reply, and the
// command must be acknowledged only then, never left for redelivery.
func TestOutcomeStoredThenAcked(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Revision: 4, Position: 99, Events: []string{"OrderDelivered"}, State: "delivered"}
	}}
	runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 20; i++ {
		cmd := command(uuid.NewString())
		cmd.ID = uuid.NewString()
		out, err := c.Send(ctx, cmd)
		if err != nil || out.Revision != 4 || out.CommandID != cmd.ID {
			t.Fatalf("send: %+v %v", out, err)
		}
		ids = append(ids, cmd.ID)
	}
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, BucketOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, StreamCommands, ConsumerWorkers)
	if err != nil {
		t.Fatal(err)
	}
	eventually.NoError(t, 10*time.Second, "every command to be acknowledged", func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumRedelivered == 0 && info.AckFloor.Stream == info.Delivered.Stream {
			return nil
		}
		return fmt.Errorf("%d pending, %d redelivered, ack floor %d of %d",
			info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream, info.Delivered.Stream)
	})
	for _, id := range ids {
		e, err := kv.Get(ctx, id)
		if err != nil {
			t.Fatalf("outcome of %s: %v", id, err)
		}
		out, err := decodeOutcome(e.Value())
		if err != nil || out.CommandID != id || out.Revision != 4 || out.Position != 99 || out.State != "delivered" {
			t.Fatalf("stored outcome of %s: %+v %v", id, out, err)
		}
	}
	if exec.calls.Load() != int64(len(ids)) {
		t.Fatalf("executor called %d times for %d commands", exec.calls.Load(), len(ids))
	}
}
