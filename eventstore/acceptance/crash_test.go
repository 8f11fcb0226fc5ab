package acceptance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

const crashChildEnv = "ORDO_CRASH_CHILD_DIR"

// batchBody is the data of every event the crash child writes: which append
// (batch) of its stream it belongs to and its place in it.
type batchBody struct {
	Batch int `json:"batch"`
	Idx   int `json:"idx"`
	Of    int `json:"of"`
}

// TestCrashRecovery runs the embedded server with many concurrent writers
// in a child process and kills it with SIGKILL at random moments. After each
// restart every acknowledged append is present, in order, $all is a gap-free
// prefix, and no append is visible in part.
func TestCrashRecovery(t *testing.T) {
	dir, rounds, child := crashTest(t, crashChildEnv, crashChild)
	if child {
		return
	}
	acked := map[string][]ack{} // stream -> acknowledged appends in order
	for round := 0; round < rounds; round++ {
		runCrashChild(t, dir, time.Duration(300+rand.IntN(700))*time.Millisecond, acked)
		verifyAfterCrash(t, dir, acked, round)
	}
}

type ack struct {
	first, last uint64 // revisions
	position    uint64 // of the last event
	ids         []string
}

func runCrashChild(t *testing.T, dir string, after time.Duration, acked map[string][]ack) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := make(chan struct{})
	firstAck := make(chan struct{})
	var firstOnce sync.Once
	go func() {
		defer close(done)
		defer firstOnce.Do(func() { close(firstAck) })
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var a struct {
				Stream   string   `json:"stream"`
				First    uint64   `json:"first"`
				Last     uint64   `json:"last"`
				Position uint64   `json:"position"`
				IDs      []string `json:"ids"`
			}
			line := sc.Text()
			if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &a) != nil {
				continue
			}
			mu.Lock()
			acked[a.Stream] = append(acked[a.Stream], ack{first: a.First, last: a.Last, position: a.Position, ids: a.IDs})
			mu.Unlock()
			firstOnce.Do(func() { close(firstAck) })
		}
	}()
	// The kill comes a random time after the child's first acknowledged
	// append, not after its start: on a busy machine starting the child
	// alone can take longer than the longest wait.
	select {
	case <-firstAck:
	case <-time.After(60 * time.Second):
	}
	time.Sleep(after)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	<-done
}

func verifyAfterCrash(t *testing.T, dir string, acked map[string][]ack, round int) {
	t.Helper()
	srv := startEmbedded(t, dir, 0)
	defer srv.Close()
	c := esdbtest.Connect(t, srv.URL())
	total := 0
	for stream, acks := range acked {
		evs, err := readAll(t, c, stream, esdb.ReadStreamOptions{}, ^uint64(0))
		if err != nil {
			t.Fatalf("round %d: read %s: %v", round, stream, err)
		}
		for _, a := range acks {
			total++
			if a.last >= uint64(len(evs)) {
				t.Fatalf("round %d: acknowledged append %s@%d..%d is missing (stream has %d events)", round, stream, a.first, a.last, len(evs))
			}
			for i, id := range a.ids {
				e := evs[a.first+uint64(i)]
				if e.EventID.String() != id {
					t.Fatalf("round %d: %s@%d holds %s, acknowledged %s", round, stream, a.first+uint64(i), e.EventID, id)
				}
			}
			if evs[a.last].Position.Commit != a.position {
				t.Fatalf("round %d: %s@%d moved from position %d to %d", round, stream, a.last, a.position, evs[a.last].Position.Commit)
			}
		}
		checkWholeBatches(t, stream, evs)
	}
	// $all is a gap-free prefix: positions 1, 2, 3, … with no hole.
	rs, err := c.ReadAll(ctxT(t), esdb.ReadAllOptions{From: esdb.Start{}}, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var want uint64 = 1
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Event.Position.Commit != want {
			t.Fatalf("round %d: $all jumps to position %d, want %d", round, ev.Event.Position.Commit, want)
		}
		want++
	}
	t.Logf("round %d: %d acknowledged appends verified, $all holds %d records", round, total, want-1)
	if round == 0 && total == 0 {
		t.Fatal("the child acknowledged no append before it was killed; the test proved nothing")
	}
}

// checkWholeBatches fails if any append of the stream is only partly there.
func checkWholeBatches(t *testing.T, stream string, evs []*esdb.RecordedEvent) {
	for i := 0; i < len(evs); {
		var b batchBody
		if err := json.Unmarshal(evs[i].Data, &b); err != nil || b.Idx != 0 {
			t.Fatalf("%s@%d: an append starts mid-batch (%s)", stream, i, evs[i].Data)
		}
		if i+b.Of > len(evs) {
			t.Fatalf("%s@%d: only %d of the %d events of an append are visible", stream, i, len(evs)-i, b.Of)
		}
		i += b.Of
	}
}

// crashTest is how a crash test starts. In the child process (childEnv
// names its data directory) it runs child there and returns child true.
// Otherwise it skips the test against an external server (the kills need
// the embedded one) and returns the data directory and how many times to
// kill the child: 4, or 2 with -short.
func crashTest(t *testing.T, childEnv string, child func(dir string)) (dir string, rounds int, isChild bool) {
	t.Helper()
	if dir := os.Getenv(childEnv); dir != "" {
		child(dir)
		return dir, 0, true
	}
	if os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("the crash test needs the embedded server")
	}
	rounds = 4
	if testing.Short() {
		rounds = 2
	}
	return t.TempDir(), rounds, false
}

// crashChild is the child process: a server and 32 writers appending 1-3
// event batches with exact expected revisions, printing each acknowledgement.
func crashChild(dir string) {
	ctx := context.Background()
	srv, err := startServerForChild(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, _ := esdb.ParseConnectionString(srv)
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		os.Exit(1)
	}
	var outMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("crash-%d", w)
			next, batch := resume(ctx, c, stream)
			for {
				n := 1 + rand.IntN(3)
				evs := make([]esdb.EventData, n)
				ids := make([]string, n)
				for i := range evs {
					data, _ := json.Marshal(batchBody{Batch: batch, Idx: i, Of: n})
					evs[i] = esdb.EventData{EventID: uuid.New(), EventType: "Crash", ContentType: esdb.ContentTypeJson, Data: data}
					ids[i] = evs[i].EventID.String()
				}
				exp := esdb.ExpectedRevision(esdb.NoStream{})
				if next > 0 {
					exp = esdb.Revision(next - 1)
				}
				r, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, evs...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					return
				}
				line, _ := json.Marshal(map[string]any{"stream": stream, "first": next, "last": r.NextExpectedVersion,
					"position": r.CommitPosition, "ids": ids})
				outMu.Lock()
				os.Stdout.Write(append(line, '\n'))
				outMu.Unlock()
				next, batch = r.NextExpectedVersion+1, batch+1
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// resume finds where a writer's stream stands after a previous round.
func resume(ctx context.Context, c *esdb.Client, stream string) (next uint64, batch int) {
	rs, err := c.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 1)
	if err != nil {
		return 0, 0
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		return 0, 0
	}
	var b batchBody
	_ = json.Unmarshal(ev.Event.Data, &b)
	return ev.Event.EventNumber + 1, b.Batch + 1
}
