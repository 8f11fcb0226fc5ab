package projections_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventually"
	"github.com/ordo-dev/ordo/projections"
)

// TestManagerResumesAfterStoreRestart stops the event store under a live
// projection and starts it again on the same address and data: the
// projection reports the lost subscription while it lasts, then resumes
// from its checkpoint and applies what was appended after the restart —
// no rebuild needed.
func TestManagerResumesAfterStoreRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	dataDir := t.TempDir()
	srv, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: dataDir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	store, err := eventstore.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m, err := projections.OpenManager(ctx, t.TempDir(), serve.ProjectionSource{Store: store}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	head := fillOrders(t, store, 20)
	_, runner := m.Current()
	if err := runner.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}

	srv.Close()
	waitStatus(t, ctx, m, "the lost subscription to show", func(s projections.Status) bool { return !s.Running && s.Error != "" })
	if srv, err = esdbserver.Start(ctx, esdbserver.Config{DataDir: dataDir, Listen: addr}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// The client reconnects on use once the server answers again.
	eventually.NoError(t, 20*time.Second, "the client to reconnect", func() error {
		_, err := store.Head(ctx)
		return err
	})
	head2 := fillOrders(t, store, 10)
	if head2 <= head {
		t.Fatalf("no new events after the restart (head %d, was %d)", head2, head)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	_, runner = m.Current()
	if err := runner.WaitFor(wctx, head2); err != nil {
		t.Fatalf("the projection did not resume after the event store came back: %v (status %+v)", err, runner.Status(ctx))
	}
	if st := runner.Status(ctx); !st.Running || st.Error != "" || st.Events != 150 {
		t.Fatalf("status after resuming: %+v, want running, no error, 150 events applied", st)
	}
}

func waitStatus(tb testing.TB, ctx context.Context, m *projections.Manager, what string, ok func(projections.Status) bool) {
	tb.Helper()
	eventually.NoError(tb, 20*time.Second, what, func() error {
		_, r := m.Current()
		if st := r.Status(ctx); !ok(st) {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}
