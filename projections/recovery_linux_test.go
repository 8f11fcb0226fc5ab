package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// TestProjectionResumesAfterWriteFailures makes the read-model writes fail
// for real — SQLite on a full disk, PostgreSQL refusing connections — while
// events keep coming: the projection keeps trying with growing pauses,
// shows the failure in its status, logs it once rather than per attempt,
// and applies every event exactly once by itself when the cause goes away.
func TestProjectionResumesAfterWriteFailures(t *testing.T) {
	defer projections.SetRetryPacing(10*time.Millisecond, 100*time.Millisecond, time.Hour)()
	t.Run("sqlite, disk full", func(t *testing.T) {
		dir, fill, free := smallDisk(t)
		testResumes(t, target{dir: dir}, fill, free)
	})
	t.Run("postgres, connections refused", func(t *testing.T) {
		dsn := projectionstest.FreshPostgres(t)
		cut, restore := refuseConnections(t, dsn)
		testResumes(t, target{dsn: dsn, dir: t.TempDir()}, cut, restore)
	})
}

func testResumes(t *testing.T, tg target, breakWrites, heal func()) {
	ctx := waitCtx(t)
	es := openEventStore(t)
	logs := &logRecorder{}
	m, err := projections.OpenManagerDSN(ctx, tg.dsn, tg.dir, serve.ProjectionSource{Store: es}, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	head := fillOrders(t, es, 20)
	store, r := m.Current()
	if err := r.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	api := projections.NewAPI(m, nil)
	api.MaxWait = 300 * time.Millisecond
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	breakWrites()
	head2 := fillOrders(t, es, 100)
	waitStatus(t, ctx, m, "the failure to show", func(s projections.Status) bool {
		return s.Resuming && s.Error != "" && s.FailedAttempts >= 3 && s.NextAttemptAt != nil && !s.CaughtUp
	})
	t.Logf("while failing: %+v", r.Status(ctx))
	// A query waiting for what cannot be applied now is told to come back.
	resp, err := http.Get(srv.URL + "/v1/stats?" + url.Values{"min_position": {strconv.FormatUint(head2, 10)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || body.Error.Code != "unavailable" {
		t.Errorf("a query for position %d while the projection fails: %d, Retry-After %q, %+v; want 503 unavailable with Retry-After",
			head2, resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if tg.dsn == "" {
		// SQLite still reads on a full disk: the queries keep answering.
		if _, err := store.Stats(ctx); err != nil {
			t.Errorf("stats on a full disk: %v", err)
		}
	}

	heal()
	if err := r.WaitFor(ctx, head2); err != nil {
		t.Fatalf("the projection did not resume: %v (status %+v)", err, r.Status(ctx))
	}
	if st := r.Status(ctx); !st.Running || st.Error != "" || st.Resuming || st.FailedAttempts != 0 || st.Events != 5*120 {
		t.Errorf("status after resuming: %+v; want running, no error, %d events applied once each", st, 5*120)
	}
	stats, err := store.Stats(ctx)
	if err != nil || stats["shipments"]["delivered"] != 120 {
		t.Errorf("stats after resuming: %v %v; want 120 delivered orders", stats, err)
	}
	if n := logs.count("WARN projection failed"); n != 1 {
		t.Errorf("logged the failure %d times, want once: %q", n, logs.all())
	}
	if n := logs.count("WARN projection still failing"); n != 0 {
		t.Errorf("logged %d repeats within one log interval: %q", n, logs.all())
	}
	if n := logs.count("INFO projection resumed"); n != 1 {
		t.Errorf("logged the resumption %d times, want once: %q", n, logs.all())
	}
}

// smallDisk mounts a small tmpfs for the read models; fill fills it to
// the last byte, free deletes the filling. The test is skipped where
// mounting is not permitted.
func smallDisk(tb testing.TB) (dir string, fill, free func()) {
	tb.Helper()
	dir = tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		tb.Skipf("SQLite disk-full pass skipped: mounting a tmpfs to fill needs root (mount: %v)", err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	filler := filepath.Join(dir, "filler")
	fill = func() {
		f, err := os.Create(filler)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		for _, size := range []int{1 << 20, 4 << 10, 1} {
			buf := make([]byte, size)
			for {
				if _, err := f.Write(buf); err != nil {
					if !errors.Is(err, syscall.ENOSPC) {
						tb.Fatal(err)
					}
					break
				}
			}
		}
	}
	free = func() {
		if err := os.Remove(filler); err != nil {
			tb.Fatal(err)
		}
	}
	return dir, fill, free
}

// refuseConnections makes the PostgreSQL database dsn refuse connections
// and drops the ones it has (cut), and lets them in again (restore).
func refuseConnections(tb testing.TB, dsn string) (cut, restore func()) {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("pgx", os.Getenv(projectionstest.PostgresEnv))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { admin.Close() })
	exec := func(q string, args ...any) {
		if _, err := admin.Exec(q, args...); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	cut = func() {
		exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`)
		exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	}
	restore = func() { exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`) }
	tb.Cleanup(func() { _, _ = admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`) })
	return cut, restore
}

// logRecorder is a slog handler that keeps "LEVEL message" of every record.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	return nil
}

func (h *logRecorder) count(prefix string) int {
	n := 0
	for _, m := range h.all() {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func (h *logRecorder) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}
