package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// answerBound is how soon after the restarted service is ready every
// command that was in flight at the crash must be answered.
const answerBound = 2 * time.Second

// TestServeKilledWithCommandsInFlight kills a real `ordo serve` process
// with SIGKILL while clients drive orders through it, starts it again on
// the same data directory and ports, and checks that every command in
// flight at the crash is answered, applied once, within answerBound of the
// restarted service reporting ready: the worker's short ack wait hands the
// dead process's commands to the new one, and a client whose connection
// dropped (NATS ran inside the killed process) sends its command again on
// reconnecting.
func TestServeKilledWithCommandsInFlight(t *testing.T) {
	for _, tc := range []struct {
		name         string
		externalNATS bool
	}{
		{"embedded NATS dies with the service", false},
		{"external NATS outlives the service", true},
	} {
		t.Run(tc.name, func(t *testing.T) { killMidFlight(t, tc.externalNATS) })
	}
}

// sent is one command's send, as its client saw it.
type sent struct {
	start, end time.Time
	err        error
}

func killMidFlight(t *testing.T, externalNATS bool) {
	dir := t.TempDir()
	httpAddr, esdbAddr := freeAddr(t), freeAddr(t)
	args := []string{"serve", "--data", filepath.Join(dir, "data"), "--http", httpAddr, "--esdb-listen", esdbAddr, "--manual-stock"}
	var natsURL string
	if externalNATS {
		ns, err := ordonats.StartEmbedded(t.Context(), ordonats.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Shutdown(context.Background()) })
		natsURL = ns.ClientURL()
		args = append(args, "--nats-url", natsURL)
	} else {
		natsAddr := freeAddr(t)
		natsURL = "nats://" + natsAddr
		args = append(args, "--nats-listen", natsAddr)
	}
	child := startServe(t, dir, args)
	waitReady(t, httpAddr, 60*time.Second)

	nc, err := natsgo.Connect(natsURL, natsgo.MaxReconnects(-1), natsgo.ReconnectWait(50*time.Millisecond),
		natsgo.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	const orders = 120
	ids := make([]string, orders)
	sends := make([][]sent, orders)
	var mu sync.Mutex
	answeredN := 0 // commands answered so far, for choosing when to kill
	killed, ready := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = uuid.NewString()
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ids[i]
			for k, cmd := range []domain.Command{
				domain.PlaceOrder{Order: id, CustomerID: "c-1", Currency: "EUR", Lines: []domain.Line{{SKU: "sku-1", Quantity: 1, UnitPrice: 500}}},
				domain.MarkStockReserved{Order: id},
				domain.ConfirmPayment{Order: id, PaymentID: "p-" + id, Amount: 500},
			} {
				select { // no new command while the service is down
				case <-killed:
					<-ready
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				s := sent{start: time.Now()}
				_, s.err = client.SendCommand(ctx, cmd, ordonats.WithCommandID(fmt.Sprintf("%s-%d", id, k)))
				s.end = time.Now()
				cancel()
				sends[i] = append(sends[i], s)
				mu.Lock()
				answeredN++
				mu.Unlock()
				if s.err != nil {
					return
				}
			}
		}()
	}
	// Kill once a random share of the commands is answered, so others are
	// surely queued, executing or being answered.
	killAt := orders * 3 * (25 + rand.IntN(35)) / 100
	for {
		mu.Lock()
		n := answeredN
		mu.Unlock()
		if n >= killAt {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(killed)
	_ = child.Process.Signal(syscall.SIGKILL)
	killTime := time.Now()
	_ = child.Wait()
	startServe(t, dir, args)
	waitReady(t, httpAddr, 60*time.Second)
	readyAt := time.Now()
	close(ready)
	wg.Wait()

	inFlight, latest := 0, time.Duration(0)
	for i, ss := range sends {
		for k, s := range ss {
			if s.err != nil {
				t.Fatalf("order %s command %d: %v", ids[i], k, s.err)
			}
			if s.start.Before(killTime) && s.end.After(killTime) {
				inFlight++
				if d := s.end.Sub(readyAt); d > latest {
					latest = d
				}
			}
		}
		if len(ss) != 3 {
			t.Fatalf("order %s: %d commands answered, want 3", ids[i], len(ss))
		}
	}
	t.Logf("%d commands in flight at the kill; restart ready %v after it; the last in-flight answer came %v after ready",
		inFlight, readyAt.Sub(killTime).Round(time.Millisecond), latest.Round(time.Millisecond))
	if inFlight == 0 {
		t.Fatal("no command was in flight at the kill; the test proved nothing")
	}
	if latest > answerBound {
		t.Fatalf("a command in flight at the crash was answered %v after the restart was ready, want at most %v", latest, answerBound)
	}
	checkAppliedOnce(t, "esdb://"+esdbAddr+"?tls=false", ids)
}

// checkAppliedOnce reads every order's stream: its three commands, each once.
func checkAppliedOnce(tb testing.TB, url string, ids []string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := eventstore.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	for _, id := range ids {
		seen := map[string]bool{}
		err := store.ReadStream(ctx, "order-"+id, 0, func(e eventstore.RecordedEvent) error {
			ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
			if err != nil {
				return err
			}
			if seen[ev.Meta.CommandID] {
				return fmt.Errorf("command %s applied twice", ev.Meta.CommandID)
			}
			seen[ev.Meta.CommandID] = true
			return nil
		})
		if err != nil || len(seen) != 3 {
			tb.Fatalf("order %s: %d commands applied (%v), want 3 once each", id, len(seen), err)
		}
	}
}

// startServe runs `ordo serve args` as a child process (this test binary)
// and stops it at cleanup; its output goes to a log file in dir.
func startServe(tb testing.TB, dir string, args []string) *exec.Cmd {
	tb.Helper()
	cmd := ordoChild(args...)
	logFile, err := os.OpenFile(filepath.Join(dir, "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		logFile.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				tb.Logf("serve log:\n%s", b)
			}
		}
	})
	return cmd
}

// waitReady polls /readyz until the service says it is ready.
func waitReady(tb testing.TB, httpAddr string, limit time.Duration) {
	tb.Helper()
	hc := &http.Client{Timeout: time.Second}
	eventually.NoError(tb, limit, "the service on "+httpAddr+" to be ready", func() error {
		resp, err := hc.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}
