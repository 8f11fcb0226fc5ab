package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventually"
	"github.com/ordo-dev/ordo/logbuf"
	ordonats "github.com/ordo-dev/ordo/nats"
)

const storeChildEnv = "ORDO_TEST_STORE_CHILD" // data directory and address of the child's event store

// TestExternalStoreOutage runs the service against an external event store,
// a real separate process (this test binary re-executed as the embedded
// server), kills that process with SIGKILL for 1 s, 5 s and 30 s (not with
// -short) while clients keep sending lifecycle commands, and starts it
// again on the same data and port. Required after each outage: the first
// command succeeds within 2 s of the store's return; and over the whole
// run: nothing lost or doubled (every order's stream holds exactly one
// event per command, in order), no dead letters, the saga and the read
// models resume from their checkpoints, the outage is logged a few times,
// not per attempt. Finally the service is stopped during an outage and
// must stop within its drain time; after a restart the commands it held
// are applied.
func TestExternalStoreOutage(t *testing.T) {
	if v := os.Getenv(storeChildEnv); v != "" {
		storeChild(v)
		return
	}
	if os.Getenv("ORDO_ESDB_URL") != "" || os.Getenv("ORDO_NATS_URL") != "" {
		t.Skip("runs its own event store process and NATS")
	}
	outages := []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}
	if testing.Short() {
		outages = outages[:2]
	}
	dir := t.TempDir()
	store := &storeProcess{t: t, dir: dir + "/esdb", addr: freeAddr(t)}
	store.start()
	defer store.kill()

	var logs logbuf.Buffer
	cfg := config(t, dir+"/serve")
	cfg.ESDBURL = "esdb://" + store.addr + "?tls=false"
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Commands.AckWait = 5 * time.Second
	sys := start(t, cfg)

	load := newLoad(sys, 8)
	load.run()
	for _, outage := range outages {
		load.awaitProgress(t, 20)
		store.kill()
		down := time.Now()
		time.Sleep(outage)
		store.start()
		first := load.firstSuccessAfter(t, store.since)
		t.Logf("outage of %v (the service saw %v): first command succeeded %v after the store's return; %d unavailable answers, %d timeouts so far",
			outage, store.since.Sub(down).Round(time.Millisecond), first.Round(time.Millisecond), load.unavailable.Load(), load.timeouts.Load())
		if first > 2*time.Second {
			t.Errorf("after an outage of %v the first command succeeded %v after the store's return, want within 2 s", outage, first)
		}
	}
	load.awaitProgress(t, 20)
	load.finish(t)
	if n := strings.Count(logs.String(), "\n"); n > 60 {
		t.Errorf("the service logged %d warnings and errors over %d outages, want a few per outage:\n%s", n, len(outages), logs.Tail(20))
	}
	checkDeadLetters(t, sys)
	head := checkStreams(t, sys.svc.ESDBURL(), load.orders())
	awaitResumed(t, sys.svc.HTTPAddr(), head)

	// Stopped during an outage: within the drain time, and what it held is
	// applied after the next start.
	load = newLoad(sys, 8)
	load.run()
	load.awaitProgress(t, 10)
	store.kill()
	time.Sleep(time.Second)
	held := load.abandon()
	drain := 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	stopping := time.Now()
	err := sys.svc.Shutdown(ctx)
	sys.svc = nil
	sys.client.Close()
	sys.nc.Close()
	if took := time.Since(stopping); took > drain || (err != nil && strings.Contains(err.Error(), "did not drain")) {
		t.Errorf("shutdown during an outage took %v (drain time %v): %v", took, drain, err)
	}
	store.start()
	sys = start(t, cfg)
	for _, id := range held {
		awaitOutcome(t, sys, id)
	}
	checkDeadLetters(t, sys)
	checkStreams(t, sys.svc.ESDBURL(), load.orders())
}

// storeProcess is the external event store: this test binary as a child
// running the embedded server on dir and addr.
type storeProcess struct {
	t         *testing.T
	dir, addr string
	cmd       *exec.Cmd
	since     time.Time // when it last started listening
}

func (p *storeProcess) start() {
	p.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestExternalStoreOutage$")
	cmd.Env = append(os.Environ(), storeChildEnv+"="+p.dir+"|"+p.addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "esdb://") {
				ready <- nil
				io.Copy(io.Discard, out)
				return
			}
		}
		ready <- fmt.Errorf("the event store process ended before it listened: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatal("the event store process did not listen within 30 s")
	}
	p.cmd, p.since = cmd, time.Now()
}

func (p *storeProcess) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// storeChild is the child: the embedded event store until it is killed.
func storeChild(v string) {
	dir, addr, _ := strings.Cut(v, "|")
	var srv *esdbserver.Server
	var err error
	for range 100 { // the port of the killed process may linger briefly
		if srv, err = esdbserver.Start(context.Background(), esdbserver.Config{DataDir: dir, Listen: addr}); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "store child:", err)
		os.Exit(1)
	}
	fmt.Println(srv.URL())
	select {}
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lifecycle is the commands a load client sends for one order, in order;
// each appends one event.
func lifecycle(id string) []domain.Command {
	return []domain.Command{placeCmd(id), domain.MarkStockReserved{Order: id},
		domain.ConfirmPayment{Order: id, PaymentID: "p-" + id[:8], Amount: total},
		domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "t-" + id[:8]},
		domain.ConfirmDelivery{Order: id}}
}

var lifecycleEvents = []string{domain.EvtOrderPlaced, domain.EvtStockReserved, domain.EvtPaymentSucceeded, domain.EvtOrderShipped, domain.EvtOrderDelivered}

// load is a bounded number of clients driving orders through their
// lifecycle. A command that is answered with an error or not in time is
// sent again with the same command ID until it succeeds.
type load struct {
	sys     *system
	clients int
	ctx     context.Context
	cancel  context.CancelFunc
	stopNew atomic.Bool
	wg      sync.WaitGroup

	mu        sync.Mutex
	successes []time.Time
	applied   map[string]int    // order ID -> commands that succeeded
	pending   map[string]string // client -> command ID sent and not yet answered with success

	unavailable, timeouts atomic.Int64
	unexpected            chan error
}

func newLoad(sys *system, clients int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	return &load{sys: sys, clients: clients, ctx: ctx, cancel: cancel, applied: map[string]int{},
		pending: map[string]string{}, unexpected: make(chan error, clients)}
}

func (l *load) run() {
	for c := range l.clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stopNew.Load() && l.ctx.Err() == nil {
				id := uuid.NewString()
				l.mu.Lock()
				l.applied[id] = 0
				l.mu.Unlock()
				for i, cmd := range lifecycle(id) {
					if l.stopNew.Load() && i > 0 {
						break
					}
					if !l.send(fmt.Sprint(c), id, i, cmd) {
						return
					}
				}
			}
		}()
	}
}

// send sends one command until it succeeds; false when the load was
// abandoned first.
func (l *load) send(client, orderID string, i int, cmd domain.Command) bool {
	commandID := fmt.Sprintf("%s-%d", orderID, i)
	l.mu.Lock()
	l.pending[client] = commandID
	l.mu.Unlock()
	for {
		ctx, cancel := context.WithTimeout(l.ctx, 3*time.Second)
		_, err := l.sys.client.SendCommand(ctx, cmd, ordonats.WithCommandID(commandID))
		cancel()
		var ce *ordonats.CommandError
		switch {
		case err == nil:
			l.mu.Lock()
			l.successes = append(l.successes, time.Now())
			l.applied[orderID]++
			delete(l.pending, client)
			l.mu.Unlock()
			return true
		case l.ctx.Err() != nil:
			return false
		case errors.As(err, &ce) && ce.Code == string(domain.CodeUnavailable):
			l.unavailable.Add(1)
		case errors.Is(err, context.DeadlineExceeded):
			l.timeouts.Add(1)
		default:
			select {
			case l.unexpected <- fmt.Errorf("command %s: %w", commandID, err):
			default:
			}
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-l.ctx.Done():
			return false
		}
	}
}

// awaitProgress waits for n more successful commands.
func (l *load) awaitProgress(t *testing.T, n int) {
	t.Helper()
	l.mu.Lock()
	want := len(l.successes) + n
	l.mu.Unlock()
	eventually.True(t, 60*time.Second, fmt.Sprintf("the clients to make %d more commands", n), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.successes) >= want
	})
}

// firstSuccessAfter is how long after since the first command succeeded.
func (l *load) firstSuccessAfter(t *testing.T, since time.Time) time.Duration {
	t.Helper()
	var first time.Time
	eventually.True(t, 60*time.Second, "a command to succeed after the store's return", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if i, _ := slices.BinarySearchFunc(l.successes, since, func(a, b time.Time) int { return a.Compare(b) }); i < len(l.successes) {
			first = l.successes[i]
		}
		return !first.IsZero()
	})
	return first.Sub(since)
}

// finish lets every client complete the command it is on and stops them.
func (l *load) finish(t *testing.T) {
	t.Helper()
	l.stopNew.Store(true)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the clients did not complete their commands within 60 s")
	}
	l.cancel()
	close(l.unexpected)
	for err := range l.unexpected {
		t.Errorf("unexpected answer: %v", err)
	}
}

// abandon stops the clients at once and returns the command IDs they had
// sent without an answer yet.
func (l *load) abandon() []string {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, id := range l.pending {
		ids = append(ids, id)
	}
	return ids
}

// orders returns every order a client started and how many of its
// commands succeeded.
func (l *load) orders() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.applied))
	for id, n := range l.applied {
		out[id] = n
	}
	return out
}

// checkStreams reads every order's stream: it holds exactly the events of
// the lifecycle's first commands, one per command, each from its own
// command; at least as many as succeeded (none lost), and at most one more
// (a command sent but not answered, when the load was abandoned). It
// returns the $all position of the last one.
func checkStreams(tb testing.TB, esdbURL string, orders map[string]int) uint64 {
	tb.Helper()
	store := connectStore(tb, esdbURL)
	var head uint64
	for id, succeeded := range orders {
		var types []string
		seen := map[string]bool{}
		err := store.ReadStream(ctxT(tb), "order-"+id, 0, func(e eventstore.RecordedEvent) error {
			ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
			if err != nil {
				return err
			}
			if seen[ev.Meta.CommandID] {
				return fmt.Errorf("command %s applied twice", ev.Meta.CommandID)
			}
			seen[ev.Meta.CommandID] = true
			if want := fmt.Sprintf("%s-%d", id, len(types)); ev.Meta.CommandID != want {
				return fmt.Errorf("event %d comes from command %s, want %s", len(types), ev.Meta.CommandID, want)
			}
			types = append(types, e.Type)
			head = max(head, e.Position)
			return nil
		})
		if errors.Is(err, eventstore.ErrStreamNotFound) && succeeded == 0 {
			continue
		}
		switch {
		case err != nil:
			tb.Errorf("order %s: %v", id, err)
		case len(types) < succeeded || len(types) > succeeded+1 || !slices.Equal(types, lifecycleEvents[:len(types)]):
			tb.Errorf("order %s: events %v after %d commands succeeded", id, types, succeeded)
		}
	}
	tb.Logf("%d orders checked", len(orders))
	return head
}

func checkDeadLetters(tb testing.TB, sys *system) {
	tb.Helper()
	js, err := jetstream.New(sys.nc)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := js.Stream(ctxT(tb), ordonats.StreamDeadLetter)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctxT(tb))
	if err != nil {
		tb.Fatal(err)
	}
	if n := info.State.Msgs; n != 0 {
		tb.Errorf("%d dead letters, want none", n)
	}
}

// awaitResumed waits until the read models and the saga have handled
// everything up to position head.
func awaitResumed(tb testing.TB, httpAddr string, head uint64) {
	tb.Helper()
	for _, what := range []string{"/v1/projections", "/v1/saga"} {
		eventually.NoError(tb, 30*time.Second, what+" to resume after the outages", func() error {
			if pos := positionOf(tb, "http://"+httpAddr+what); pos < head {
				return fmt.Errorf("at position %d, want at least %d", pos, head)
			}
			return nil
		})
	}
}

// positionOf is the "position" of a JSON status, or of its first element
// when it is a list.
func positionOf(tb testing.TB, url string) uint64 {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var one struct{ Position uint64 }
	if json.Unmarshal(body, &one) == nil && one.Position > 0 {
		return one.Position
	}
	var many []struct{ Position uint64 }
	if json.Unmarshal(body, &many) == nil && len(many) > 0 {
		return many[0].Position
	}
	var wrapped map[string][]struct{ Position uint64 }
	if json.Unmarshal(body, &wrapped) == nil {
		for _, l := range wrapped {
			if len(l) > 0 {
				return l[0].Position
			}
		}
	}
	return 0
}

func awaitOutcome(tb testing.TB, sys *system, commandID string) {
	tb.Helper()
	var out ordonats.Outcome
	eventually.NoError(tb, 30*time.Second, fmt.Sprintf("the outcome of command %s, held during the outage", commandID), func() error {
		var err error
		out, err = sys.client.Outcome(ctxT(tb), commandID)
		if err != nil && !errors.Is(err, ordonats.ErrNoOutcome) {
			tb.Fatalf("outcome of command %s: %v", commandID, err)
		}
		return err
	})
	if out.Error != nil {
		tb.Errorf("command %s held during the outage: %s", commandID, out.Error.Message)
	}
}
