package nats

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// holderRun records when a holder worked under a lease.
type holderRun struct {
	mu           sync.Mutex
	start, end   time.Time
	started      chan struct{}
	standbyFor   []string
	standbyCount int
	lease        *Lease
	validUntil   time.Time // the lease's when the holder stopped working
}

func newHolderRun() *holderRun { return &holderRun{started: make(chan struct{})} }

func (h *holderRun) standby(current string) {
	h.mu.Lock()
	h.standbyFor = append(h.standbyFor, current)
	h.mu.Unlock()
}

// work runs until ctx ends or stop is closed.
func (h *holderRun) work(stop <-chan struct{}) func(ctx context.Context, l *Lease) error {
	return func(ctx context.Context, l *Lease) error {
		h.mu.Lock()
		h.start = time.Now()
		h.lease = l
		h.mu.Unlock()
		close(h.started)
		select {
		case <-ctx.Done():
		case <-stop:
		}
		h.mu.Lock()
		h.end = time.Now()
		h.validUntil = l.ValidUntil()
		h.mu.Unlock()
		return nil
	}
}

func waitStarted(t *testing.T, h *holderRun, what string) {
	t.Helper()
	select {
	case <-h.started:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s never held the lease", what)
	}
}

// TestLeaseOneHolderThenTakeover: of two instances asking for one lease,
// one holds it and the other stands by naming the holder; when the holder
// stops cleanly the standby takes over at once, and when a holder dies
// (its NATS connection gone, nothing released) the standby takes over once
// the lease expires — never while the old holder still works under it.
func TestLeaseOneHolderThenTakeover(t *testing.T) {
	s := startServer(t, t.TempDir())
	const ttl = 2 * time.Second
	open := func(nc *natsgo.Conn) *Leases {
		ls, err := OpenLeases(context.Background(), jsOf(t, nc), LeaseConfig{TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A holds, B stands by.
	ncB := connect(t, s)
	lsA, lsB := open(connect(t, s)), open(ncB)
	a, b := newHolderRun(), newHolderRun()
	stopA := make(chan struct{})
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- lsA.Hold(ctx, "saga", "instance-a", a.standby, a.work(stopA)) }()
	waitStarted(t, a, "A")
	stopB := make(chan struct{})
	go func() { doneB <- lsB.Hold(ctx, "saga", "instance-b", b.standby, b.work(stopB)) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.standbyFor)
		b.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never reported standing by")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.standbyFor[0] != "instance-a" {
		t.Fatalf("B stands by for %q, want instance-a", b.standbyFor[0])
	}
	// Longer than the TTL: A keeps the lease by renewing it.
	time.Sleep(2 * ttl)
	select {
	case <-b.started:
		t.Fatal("B holds the lease while A renews it")
	default:
	}
	// A's validity moved with its renewals, never beyond 4/5 of the TTL
	// from now.
	if v, now := a.lease.ValidUntil(), time.Now(); !v.After(a.start.Add(ttl*4/5)) || v.After(now.Add(ttl*4/5)) {
		t.Fatalf("A's lease valid until %v (started %v, now %v); want renewed, at most %v ahead", v, a.start, now, ttl*4/5)
	}
	// A stops cleanly: B takes over, after A stopped.
	close(stopA)
	if err := <-doneA; err != nil {
		t.Fatalf("A: %v", err)
	}
	waitStarted(t, b, "B")
	if !b.start.After(a.end) {
		t.Fatalf("B started at %v, before A stopped at %v", b.start, a.end)
	}

	// C stands by; B's instance dies: its connection closes, nothing is
	// released. C takes over once the lease expired, after B noticed.
	lsC := open(connect(t, s))
	c := newHolderRun()
	doneC := make(chan error, 1)
	go func() { doneC <- lsC.Hold(ctx, "saga", "instance-c", c.standby, c.work(make(chan struct{}))) }()
	time.Sleep(ttl / 2) // C is polling
	ncB.Close()
	err := <-doneB
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("B after its connection closed: %v, want the lease lost", err)
	}
	waitStarted(t, c, "C")
	if !c.start.After(b.end) {
		t.Fatalf("C started at %v, before B stopped working at %v", c.start, b.end)
	}
	// The fence: whatever B still did under the lease, it stopped by its
	// validity, and C began only after that.
	if !c.start.After(b.validUntil) {
		t.Fatalf("C started at %v, before B's lease was valid until %v", c.start, b.validUntil)
	}
	if took := c.start.Sub(b.end); took > 3*ttl {
		t.Fatalf("C took over %v after B stopped; want within a few TTLs", took)
	}
	t.Logf("takeover after the holder died: %v after it stopped working", c.start.Sub(b.end).Round(time.Millisecond))
}

// TestCheckpointFencedByTakeover: a holder that loaded the checkpoint
// claims it; the previous holder's saves then fail with
// ErrCheckpointFenced and never move it.
func TestCheckpointFencedByTakeover(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	kv, err := OpenCheckpoints(ctx, jsOf(t, connect(t, s)), 1)
	if err != nil {
		t.Fatal(err)
	}
	old := NewCheckpoint(kv, "saga")
	old.Fallback = func(context.Context) (uint64, error) { return 42, nil }
	if pos, err := old.Load(ctx); err != nil || pos != 42 {
		t.Fatalf("first load: %d, %v; want the fallback 42", pos, err)
	}
	if err := old.Save(ctx, 100); err != nil {
		t.Fatal(err)
	}
	taker := NewCheckpoint(kv, "saga")
	if pos, err := taker.Load(ctx); err != nil || pos != 100 {
		t.Fatalf("takeover load: %d, %v; want 100", pos, err)
	}
	if err := old.Save(ctx, 90); !errors.Is(err, ErrCheckpointFenced) {
		t.Fatalf("the old holder's save after the takeover: %v, want ErrCheckpointFenced", err)
	}
	if err := taker.Save(ctx, 150); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "saga")
	if err != nil || string(e.Value()) != "150" {
		t.Fatalf("checkpoint: %v %v, want 150", e, err)
	}
}
