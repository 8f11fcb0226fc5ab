package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// buildOrdo builds the ordo command into a temporary directory, once per
// test, and returns its path.
func buildOrdo(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "ordo")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ordo-dev/ordo/cmd/ordo").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build ./cmd/ordo: %v\n%s", err, out)
	}
	return bin
}

// process is a child process of the ordo command, its output kept for the
// failure message.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once it has exited
	mu     sync.Mutex
	out    bytes.Buffer
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// tail is the last n lines of the process's output.
func (p *process) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// startOrdo starts `ordo args…`; the test's cleanup stops it (SIGTERM, then
// SIGKILL after 20 s).
func startOrdo(tb testing.TB, bin string, stdout io.Writer, args ...string) *process {
	tb.Helper()
	p := &process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Stderr = p
	p.cmd.Stdout = p
	if stdout != nil {
		p.cmd.Stdout = io.MultiWriter(p, stdout)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := p.exited
	go func() {
		_ = p.cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
		}
	})
	return p
}

// startEventStoreProcess runs `ordo eventstore serve` on a free loopback
// port and returns its URL.
func startEventStoreProcess(tb testing.TB, bin, dir string) string {
	tb.Helper()
	pr, pw := io.Pipe()
	p := startOrdo(tb, bin, pw, "eventstore", "serve", "--listen", "127.0.0.1:0", "--data", dir)
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "esdb://") {
				urls <- sc.Text()
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(60 * time.Second):
		tb.Fatalf("ordo eventstore serve printed no URL:\n%s", p.tail(20))
	}
	return ""
}

// TestTwoInstancesStartTogether starts two `ordo serve` processes at the
// same moment (and, again, one second apart) against one external NATS
// (JetStream), one `ordo eventstore serve` and, when ORDO_TEST_POSTGRES_DSN
// is set, one PostgreSQL database for the read models: both create or open
// the same streams, buckets, consumer and tables at once, and both must
// become ready (one holding the leases, the other on standby).
func TestTwoInstancesStartTogether(t *testing.T) {
	bin := buildOrdo(t)
	for _, apart := range []time.Duration{0, time.Second} {
		t.Run("apart "+apart.String(), func(t *testing.T) { testStartTogether(t, bin, apart) })
	}
}

func testStartTogether(t *testing.T, bin string, apart time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ns, err := ordonats.StartEmbedded(ctx, ordonats.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(context.Background()) })
	esURL := startEventStoreProcess(t, bin, filepath.Join(dir, "esdb"))
	var dsn []string
	if os.Getenv(projectionstest.PostgresEnv) == "" {
		t.Log("PostgreSQL part skipped (read models in SQLite): set " + projectionstest.PostgresEnv + ", e.g. export " + projectionstest.PostgresEnv + "=$(.ci/postgres.sh)")
	} else {
		dsn = []string{"--readmodel-dsn", projectionstest.FreshPostgres(t)}
	}

	dirs := []string{t.TempDir(), t.TempDir()}
	procs := make([]*process, len(dirs))
	var started sync.WaitGroup
	gate := make(chan struct{})
	for i, d := range dirs {
		started.Add(1)
		go func() {
			defer started.Done()
			<-gate
			time.Sleep(time.Duration(i) * apart)
			procs[i] = startOrdo(t, bin, nil, append([]string{"serve", "--data", d, "--http", "127.0.0.1:0",
				"--nats-url", ns.ClientURL(), "--esdb-url", esURL, "--lease-ttl", "2s"}, dsn...)...)
		}()
	}
	close(gate)
	started.Wait()

	hc := &http.Client{Timeout: 5 * time.Second}
	readyz := func(d string) (int, string) {
		rt, ok, err := serve.ReadRuntime(d)
		if err != nil || !ok || rt.HTTPAddr == "" {
			return 0, "not serving yet (no serve.json)"
		}
		resp, err := hc.Get("http://" + rt.HTTPAddr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(90 * time.Second)
	for i, d := range dirs {
		for {
			code, body := readyz(d)
			if code == http.StatusOK {
				t.Logf("instance %d ready: %s", i, strings.TrimSpace(body))
				break
			}
			if !procs[i].running() || time.Now().After(deadline) {
				t.Fatalf("instance %d never became ready: /readyz %d %s\nits log:\n%s", i, code, body, procs[i].tail(30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Read models shared in PostgreSQL are kept current by one instance;
	// each instance keeps its own SQLite files current.
	want := map[string]int{"up": 2}
	if dsn != nil {
		want = map[string]int{"up": 1, "standby": 1}
	}
	eventually.NoError(t, 30*time.Second, "the instances' projections parts", func() error {
		got := map[string]int{} // "up" or "standby" → instances
		for _, d := range dirs {
			_, body := readyz(d)
			var rd serve.Readiness
			_ = json.Unmarshal([]byte(body), &rd)
			got[strings.SplitN(rd.Parts["projections"], ":", 2)[0]]++
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}
