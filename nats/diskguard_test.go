package nats

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/smalldisk"
)

// publishUntil publishes 4 KiB messages until cond holds for the publish
// error, for up to 30 s.
func publishUntil(tb testing.TB, js jetstream.JetStream, cond func(error) bool) error {
	tb.Helper()
	body := make([]byte, 4<<10)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.Publish(ctx, "fill.x", body)
		cancel()
		if cond(err) {
			return err
		}
		if time.Now().After(deadline) {
			tb.Fatalf("publish kept returning %v", err)
		}
	}
}

// TestJetStreamKeepsFreeDisk: publishing into a small disk is refused with
// an error before the disk is full, the stream is never broken by a
// failed write, and publishing resumes by itself once space is freed.
func TestJetStreamKeepsFreeDisk(t *testing.T) {
	disk := smalldisk.Mount(t, 24<<20)
	s := startServer(t, filepath.Join(disk, "nats"))
	js, _ := jetstream.New(connect(t, s))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 12<<20)
	err := publishUntil(t, js, func(err error) bool { return err != nil })
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || !strings.Contains(strings.ToLower(err.Error()), "resource") {
		t.Fatalf("publish on a nearly full disk: got %v, want JetStream's resource-limit error", err)
	}
	var st syscall.Statfs_t
	syscall.Statfs(disk, &st)
	if free := int64(st.Bavail) * int64(st.Bsize); free < DefaultMinFreeDisk/2 {
		t.Fatalf("JetStream refused only with %d bytes free", free)
	}
	os.Remove(filler)
	publishUntil(t, js, func(err error) bool { return err == nil })
}

// TestJetStreamRestartsAfterAFailedWrite: when another program fills the
// disk faster than the guard looks, a JetStream write fails and nats-server
// stops storing into that stream; once space is freed the guard restarts
// JetStream and the stream takes messages again.
func TestJetStreamRestartsAfterAFailedWrite(t *testing.T) {
	disk := smalldisk.Mount(t, 24<<20)
	s := startServer(t, filepath.Join(disk, "nats"))
	js, _ := jetstream.New(connect(t, s))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, js, func(err error) bool { return err == nil })
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 0)
	// Messages of a block's worth force new blocks, whatever the guard thinks.
	big := make([]byte, 1<<20)
	for i := 0; i < 8 && !s.guard.writeFailed.Load(); i++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		js.Publish(pctx, "fill.big", big)
		cancel()
	}
	if !s.guard.writeFailed.Load() {
		t.Skip("JetStream never hit ENOSPC here; nothing to recover from")
	}
	os.Remove(filler)
	publishUntil(t, js, func(err error) bool { return err == nil })
}

// TestWorkersResumeAfterJetStreamRestart: when the disk guard restarts
// JetStream (after a write failed on a full disk), the server forgets the
// workers' pull request; the workers must notice from the missing idle
// heartbeats and pull again within seconds, not after the default pull's
// half a minute.
func TestWorkersResumeAfterJetStreamRestart(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &scripted{fn: func(_ int64, cmd Command) Outcome {
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{"OrderDelivered"}, State: "delivered"}
	}}
	runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{})
	send := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := c.Send(ctx, command(uuid.NewString()))
		return err
	}
	if err := send(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.guard.restartJetStream()
	restarted := time.Now()
	const bound = 12 * time.Second
	for {
		err := send(2 * time.Second)
		if err == nil {
			t.Logf("a command was answered %v after the restart", time.Since(restarted).Round(time.Millisecond))
			return
		}
		if time.Since(restarted) > bound {
			t.Fatalf("no command answered within %v of JetStream's restart: %v", bound, err)
		}
	}
}
