package nats

import (
	"context"
	"testing"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
)

// BenchmarkCommandRoundTrip is one client sending commands one after the
// other through the worker to an executor that answers at once: the
// transport's own cost per command (publish, consume, command-ID ledger,
// reply, outcome store), without the event store.
//
// The connection is in-process, as `ordo serve` has it with embedded NATS.
func BenchmarkCommandRoundTrip(b *testing.B) {
	s := startServer(b, b.TempDir())
	nc, err := natsgo.Connect(s.ClientURL(), natsgo.InProcessServer(s.Server()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"OrderDelivered"}}
	}}
	runWorker(b, nc, exec, WorkerConfig{})
	c, err := NewClient(nc, ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		minted bool
	}{
		{"caller's command IDs", false}, // looked up in the ledger
		{"client-minted command IDs", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cmd := command(uuid.NewString())
			for b.Loop() {
				cmd.ID = ""
				if !bc.minted {
					cmd.ID = uuid.NewString()
				}
				if _, err := c.Send(ctx, cmd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
