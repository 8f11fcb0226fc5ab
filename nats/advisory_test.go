package nats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestMaxDeliveriesAdvisoryHandledOnce: the workers of two instances share
// the command consumer, so both hear its max-deliveries advisory; the
// command it names is recorded as a dead letter (and answered) once, not
// once per instance.
func TestMaxDeliveriesAdvisoryHandledOnce(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	release := make(chan struct{})
	taken := make(chan struct{}, 1)
	// The command is never finished while the test looks: as if each
	// delivery had crashed its worker.
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		select {
		case taken <- struct{}{}:
		default:
		}
		<-release
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"OrderDelivered"}}
	}}
	runWorker(t, nc, exec, WorkerConfig{})
	runWorker(t, connect(t, s), exec, WorkerConfig{})
	t.Cleanup(func() { close(release) }) // before the workers stop
	c, _ := NewClient(nc, ClientOptions{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = c.Send(ctx, command(uuid.NewString()))
	}()
	select {
	case <-taken:
	case <-time.After(30 * time.Second):
		t.Fatal("no worker took the command")
	}
	ctx := context.Background()
	st, err := jsOf(t, nc).Stream(ctx, StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The advisory JetStream publishes when the deliveries ran out.
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamCommands + "." + ConsumerWorkers
	if err := nc.Publish(subject, fmt.Appendf(nil, `{"stream_seq":%d,"deliveries":5}`, info.State.LastSeq)); err != nil {
		t.Fatal(err)
	}
	if n := deadLettersAtLeast(t, nc, 1); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	// The other worker would record its own within milliseconds.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if n := deadLettersAtLeast(t, nc, 0); n != 1 {
			t.Fatalf("%d dead letters of one command, want 1", n)
		}
	}
}
