package acceptance

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

const psCrashChildEnv = "ORDO_PS_CRASH_CHILD_DIR"

// TestPersistentSubscriptionCrash kills the embedded server (SIGKILL, in a
// child process) while a group's consumer acknowledges events and holds
// others unacknowledged, several times. After each restart the checkpoint
// is at least what the server reported before the kill (no acknowledged
// position is lost), the group resumes right after it, no event held
// unacknowledged is skipped, and by the end every event was delivered.
func TestPersistentSubscriptionCrash(t *testing.T) {
	dir, rounds, child := crashTest(t, psCrashChildEnv, psCrashChild)
	if child {
		return
	}
	const total, stream, group = 3000, "ps-crash", "g"
	st := &psCrashState{delivered: map[uint64]int{}, maxCP: -1}
	for round := 0; round <= rounds; round++ {
		kill, url := startPSCrashChild(t, dir)
		c := esdbtest.Connect(t, url)
		if round == 0 {
			for i := 0; i < total; i += 500 {
				appendOK(t, c, stream, esdb.Any{}, events(500)...)
			}
			if err := c.CreatePersistentSubscription(ctxT(t), stream, group, esdb.PersistentStreamSubscriptionOptions{StartFrom: esdb.Start{},
				Settings: psSettings(func(s *esdb.PersistentSubscriptionSettings) {
					s.CheckpointLowerBound, s.CheckpointUpperBound, s.CheckpointAfter = 1, 10, 200
				})}); err != nil {
				t.Fatal(err)
			}
		} else {
			st.verifyResume(t, c, stream, group, round)
		}
		last := round == rounds
		st.consume(t, c, stream, group, last, total-1)
		if !last {
			// Killed while the consumer receives and acknowledges.
			time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		}
		kill()
		st.stop()
		c.Close()
	}
	for rev := uint64(0); rev < total; rev++ {
		if st.delivered[rev] == 0 {
			t.Fatalf("event %d was never delivered", rev)
		}
	}
	redelivered := 0
	for _, n := range st.delivered {
		if n > 1 {
			redelivered++
		}
	}
	t.Logf("%d rounds, %d events each delivered at least once, %d more than once (at-least-once after a crash)", rounds, total, redelivered)
}

// psCrashState is what the parent saw of the group across rounds.
type psCrashState struct {
	mu        sync.Mutex
	delivered map[uint64]int
	held      map[uint64]bool // delivered and never acknowledged, since the last restart
	maxCP     int64           // highest checkpoint the server reported, -1: none
	resumeAt  int64           // where the group must resume
	cancel    context.CancelFunc
	done      chan struct{}  // the consumer ended
	polling   sync.WaitGroup // the checkpoint poller
	top       uint64         // highest revision delivered
}

// verifyResume checks the restarted group against what was seen before.
func (st *psCrashState) verifyResume(t *testing.T, c *esdb.Client, stream, group string, round int) {
	t.Helper()
	info, err := c.GetPersistentSubscriptionInfo(ctxT(t), stream, group, esdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp := int64(-1)
	if r := info.Stats.LastCheckpointedEventRevision; r != nil {
		cp = int64(*r)
	}
	if cp < st.maxCP {
		t.Fatalf("round %d: checkpoint after the kill is %d, but %d was reported before it", round, cp, st.maxCP)
	}
	lowestHeld := int64(-1)
	for rev := range st.held {
		if lowestHeld < 0 || int64(rev) < lowestHeld {
			lowestHeld = int64(rev)
		}
	}
	if lowestHeld >= 0 && cp >= lowestHeld {
		t.Fatalf("round %d: checkpoint %d passed event %d, which was never acknowledged", round, cp, lowestHeld)
	}
	t.Logf("round %d: checkpoint %d (reported before the kill: %d), lowest unacknowledged %d", round, cp, st.maxCP, lowestHeld)
	st.maxCP = cp
	st.resumeAt = cp + 1
}

// consume runs a consumer until stop (or, in the last round, until every
// event was delivered and those held before were delivered again); it
// holds about one event in 150 unacknowledged and watches the
// checkpoint the server reports.
func (st *psCrashState) consume(t *testing.T, c *esdb.Client, stream, group string, last bool, lastRev uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel, st.done = cancel, make(chan struct{})
	sub, err := c.SubscribeToPersistentSubscription(ctx, stream, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	prevHeld := st.held
	st.held = map[uint64]bool{}
	first := true
	errs := make(chan error, 1)
	go func() {
		defer close(st.done)
		for {
			ev := sub.Recv()
			if ev.EventAppeared == nil {
				return
			}
			rev := ev.EventAppeared.Event.OriginalEvent().EventNumber
			st.mu.Lock()
			if first && int64(rev) != st.resumeAt {
				errs <- fmt.Errorf("the restarted group resumed at revision %d, want %d (right after its checkpoint)", rev, st.resumeAt)
			}
			first = false
			st.delivered[rev]++
			delete(prevHeld, rev)
			st.top = max(st.top, rev)
			hold := !last && rand.IntN(150) == 0
			if hold {
				st.held[rev] = true
			}
			finished := last && st.top >= lastRev && len(prevHeld) == 0
			st.mu.Unlock()
			if !hold {
				_ = sub.Ack(ev.EventAppeared.Event)
			}
			if finished {
				return
			}
		}
	}()
	st.polling.Add(1)
	go func() {
		defer st.polling.Done()
		for ctx.Err() == nil {
			info, err := c.GetPersistentSubscriptionInfo(ctx, stream, group, esdb.GetPersistentSubscriptionOptions{})
			if err == nil && info.Stats.LastCheckpointedEventRevision != nil {
				st.mu.Lock()
				st.maxCP = max(st.maxCP, int64(*info.Stats.LastCheckpointedEventRevision))
				st.mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if last {
		select {
		case <-st.done:
		case <-time.After(60 * time.Second):
			st.mu.Lock()
			top, missing := st.top, len(prevHeld)
			st.mu.Unlock()
			t.Fatalf("the last round did not deliver every event (highest %d, %d held before not redelivered)", top, missing)
		}
		cancel()
		sub.Close()
		st.polling.Wait()
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// stop ends the round's consumer once its server is gone.
func (st *psCrashState) stop() {
	st.cancel()
	<-st.done
	st.polling.Wait()
}

// startPSCrashChild starts the server in a child process; kill sends it
// SIGKILL and waits for it.
func startPSCrashChild(tb testing.TB, dir string) (kill func(), url string) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPersistentSubscriptionCrash$")
	cmd.Env = append(os.Environ(), psCrashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	kill = func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	lines := bufio.NewScanner(out)
	urls := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if u, ok := strings.CutPrefix(lines.Text(), "url="); ok {
				urls <- u
			}
		}
	}()
	select {
	case url = <-urls:
		return kill, url
	case <-time.After(60 * time.Second):
		kill()
		tb.Fatal("the child server did not start within 60 s")
	}
	return nil, ""
}

// psCrashChild is the child process: a server that runs until killed.
func psCrashChild(dir string) {
	url, err := startServerForChild(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("url=" + url)
	select {}
}
