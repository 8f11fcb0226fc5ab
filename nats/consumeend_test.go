package nats

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestWorkerRunEndsWhenItsConsumerGoes: a worker whose consumer (or whole
// command stream) is deleted under it takes no more commands; Run returns
// an error saying so instead of waiting silently for a shutdown.
func TestWorkerRunEndsWhenItsConsumerGoes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		delete func(ctx context.Context, js jetstream.JetStream) error
	}{
		{"consumer", func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteConsumer(ctx, StreamCommands, ConsumerWorkers)
		}},
		{"stream", func(ctx context.Context, js jetstream.JetStream) error { return js.DeleteStream(ctx, StreamCommands) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, t.TempDir())
			nc := connect(t, s)
			w, err := NewWorker(nc, &scripted{fn: func(int64, Command) Outcome { return Outcome{} }}, WorkerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			select {
			case <-w.Ready():
			case err := <-done:
				t.Fatal(err)
			}
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			if err := tt.delete(dctx, jsOf(t, nc)); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err == nil || !(errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
					errors.Is(err, jetstream.ErrStreamNotFound)) {
					t.Fatalf("Run returned %v; want the consumption's end", err)
				}
				t.Logf("Run: %v", err)
			case <-time.After(60 * time.Second):
				t.Fatal("Run still running a minute after its consumer was deleted")
			}
		})
	}
}
