package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
	"github.com/ordo-dev/ordo/logbuf"
	ordonats "github.com/ordo-dev/ordo/nats"
	"github.com/ordo-dev/ordo/smalldisk"
)

// TestFullDisk runs `ordo serve` as a real process with its data directory
// on a 64 MiB file system and commands flowing until the disk is full: the
// process must not crash, commands are answered `unavailable`, queries keep
// answering, the log stays short, and once space is freed commands succeed
// again by themselves. Then it fills the disk completely, stops the service
// (SIGTERM) and starts it again on the full disk: it must listen, answer
// `unavailable` and stop on SIGTERM.
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a disk under load: not in -short")
	}
	disk := smalldisk.Mount(t, 64<<20)
	data := filepath.Join(disk, "data")
	// Room the test gives back later: the service must then resume alone.
	ballast := filepath.Join(disk, "test-ballast")
	smalldisk.Allocate(t, ballast, 24<<20)

	svc := startServeChild(t, data)
	c := dialService(t, svc)
	acked := fillUntilRefused(t, c, 3*time.Minute)
	t.Logf("appends were refused after %d acknowledged orders (%s free)", len(acked), smalldisk.MiB(t, disk))
	if len(acked) == 0 {
		t.Fatal("no order was acknowledged before the disk filled")
	}
	expectUnavailable(t, svc)
	// Another program takes the rest of the disk.
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 0)
	expectUnavailable(t, svc)
	for _, path := range []string{"/v1/stats", "/v1/orders/" + acked[0]} {
		if code := httpGet(t, svc.httpAddr, path); code != http.StatusOK {
			t.Errorf("GET %s on the full disk: %d, want 200", path, code)
		}
	}
	if !svc.alive() {
		t.Fatalf("ordo serve exited on the full disk:\n%s", svc.log.Tail(40))
	}

	// Space comes back: commands succeed again without any intervention.
	freed := time.Now()
	for _, f := range []string{filler, ballast} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	id := waitPlaced(t, c, 90*time.Second)
	t.Logf("commands succeeded again %v after space was freed", time.Since(freed).Round(100*time.Millisecond))
	acked = append(acked, id)
	for _, id := range acked {
		view, err := c.GetOrder(context.Background(), id)
		if err != nil {
			t.Fatalf("acknowledged order %s: %v", id, err)
		}
		if view.Revision != 0 {
			t.Fatalf("order %s was placed once and has revision %d: a command took effect twice", id, view.Revision)
		}
	}
	t.Logf("acknowledged %d, lost 0, doubled 0, dead-lettered %d (commands answered unavailable)", len(acked), deadLetters(t, svc))

	// The disk fills completely; the service stops, and starts again on it.
	smalldisk.LeaveFree(t, filler, 0)
	svc.stop(t, 30*time.Second)
	first := svc.log
	svc = startServeChild(t, data)
	expectUnavailable(t, svc)
	svc.stop(t, 30*time.Second)
	for _, l := range []*logbuf.Buffer{first, svc.log} {
		for _, s := range []string{"panic:", "fatal error:"} {
			if strings.Contains(l.String(), s) {
				t.Fatalf("the service log holds %q:\n%s", s, l.Tail(40))
			}
		}
	}
	if n := first.Lines() + svc.log.Lines(); n > 400 {
		t.Errorf("the service wrote %d log lines in this test; the log must stay readable:\n%s", n, first.Tail(40))
	}
}

// expectUnavailable sends a command with the CLI, as an operator would,
// and expects it answered unavailable: by the workers when the event store
// refuses it, or at once when JetStream cannot take it.
func expectUnavailable(tb testing.TB, p *serveProc) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, err := cli(ctx, "order", "place", "--customer", "c-1", "--line", "sku-1:1:100", "--currency", "EUR",
		"--nats-url", p.natsURL, "--json", "--timeout", "30s")
	if err == nil || !strings.Contains(out, `"code":"unavailable"`) {
		tb.Fatalf("ordo order place on the full disk: %v\n%s\nwant the code unavailable", err, out)
	}
}

// serveProc is ordo serve running as a child process.
type serveProc struct {
	cmd      *exec.Cmd
	natsURL  string
	httpAddr string
	log      *logbuf.Buffer
	exited   chan struct{}
	exitErr  error
}

var servingLine = regexp.MustCompile(`ordo is serving: NATS (\S+), event store \S+, HTTP http://(\S+)`)

// startServeChild starts ordo serve on data, on free loopback ports, and
// waits until it says it is serving.
func startServeChild(tb testing.TB, data string) *serveProc {
	tb.Helper()
	cmd := ordoChild("serve", "--data", data, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0",
		"--esdb-listen", "127.0.0.1:0", "--manual-stock")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &serveProc{cmd: cmd, log: &logbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.exitErr = cmd.Wait(); close(p.exited) }()
	tb.Cleanup(func() {
		if p.alive() {
			cmd.Process.Kill()
			<-p.exited
		}
	})
	serving := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				serving <- m
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case m := <-serving:
		p.natsURL, p.httpAddr = m[1], m[2]
		return p
	case <-p.exited:
		tb.Fatalf("ordo serve exited before serving (%v):\n%s", p.exitErr, p.log.Tail(40))
	case <-time.After(90 * time.Second):
		tb.Fatalf("ordo serve did not start serving within 90 s:\n%s", p.log.Tail(40))
	}
	return nil
}

func (p *serveProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and expects a clean exit within d.
func (p *serveProc) stop(t *testing.T, d time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
		if p.exitErr != nil {
			t.Fatalf("ordo serve exited with %v after SIGTERM:\n%s", p.exitErr, p.log.Tail(40))
		}
	case <-time.After(d):
		t.Fatalf("ordo serve did not stop within %v of SIGTERM:\n%s", d, p.log.Tail(40))
	}
}

func dialService(tb testing.TB, p *serveProc) *ordonats.Client {
	tb.Helper()
	nc, err := natsgo.Connect(p.natsURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	c, err := ordonats.NewClient(nc, ordonats.ClientOptions{Timeout: 20 * time.Second, PublishRetries: 1})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// deadLetters counts the dead-letter stream's messages.
func deadLetters(tb testing.TB, p *serveProc) uint64 {
	tb.Helper()
	nc, err := natsgo.Connect(p.natsURL)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, ordonats.StreamDeadLetter)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

// bigOrder is a PlaceOrder of about 8 KB, so the disk fills quickly.
func bigOrder(id string) domain.PlaceOrder {
	lines := make([]domain.Line, 100)
	for i := range lines {
		lines[i] = domain.Line{SKU: fmt.Sprintf("sku-%03d-%s", i, strings.Repeat("x", 40)), Quantity: 1, UnitPrice: 100}
	}
	return domain.PlaceOrder{Order: id, CustomerID: "c-full-disk", Currency: "EUR", Lines: lines}
}

func placeOrder(c *ordonats.Client, timeout time.Duration) (ordonats.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.PlaceOrder(ctx, bigOrder(uuid.NewString()))
}

// fillUntilRefused places orders from 16 clients until one is refused
// (unavailable, or JetStream refusing to take it), and returns the
// acknowledged order IDs.
func fillUntilRefused(tb testing.TB, c *ordonats.Client, limit time.Duration) []string {
	tb.Helper()
	var (
		mu      sync.Mutex
		acked   []string
		refused atomic.Bool
		other   atomic.Value
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(limit)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !refused.Load() && time.Now().Before(deadline) {
				out, err := placeOrder(c, 30*time.Second)
				var ce *ordonats.CommandError
				var api *jetstream.APIError
				switch {
				case err == nil:
					mu.Lock()
					acked = append(acked, out.OrderID)
					mu.Unlock()
				case errors.As(err, &ce) && ce.Code == string(domain.CodeUnavailable),
					errors.As(err, &api) && strings.Contains(api.Description, "resource"):
					refused.Store(true)
				default:
					other.Store(err)
					refused.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := other.Load().(error); err != nil {
		tb.Fatalf("a command failed with %v, want unavailable once the disk is full", err)
	}
	if !refused.Load() {
		tb.Fatalf("no command was refused within %v: the disk did not fill", limit)
	}
	return acked
}

// waitPlaced places orders until one is acknowledged, within limit.
func waitPlaced(tb testing.TB, c *ordonats.Client, limit time.Duration) string {
	tb.Helper()
	var id string
	eventually.NoError(tb, limit, "a command to succeed after space was freed", func() error {
		out, err := placeOrder(c, 15*time.Second)
		id = out.OrderID
		return err
	})
	return id
}

func httpGet(tb testing.TB, addr, path string) int {
	tb.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		tb.Errorf("GET %s: %v", path, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
