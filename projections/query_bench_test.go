package projections_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

// BenchmarkQueryAPI measures the HTTP query API under 32 concurrent
// readers on a populated read model (10,000 orders): GET /v1/orders/{id}
// for random orders, and pages of /v1/payments, /v1/shipments and
// /v1/refunds, over loopback. It reports p50 and p99 latency and queries/s.
// The run is bounded twice: b.N queries in all, and 30 s. One op is one
// query.
func BenchmarkQueryAPI(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchQueries(b, target{dir: b.TempDir()}) })
	b.Run("postgres", func(b *testing.B) { benchQueries(b, target{dsn: projectionstest.FreshPostgres(b), dir: b.TempDir()}) })
}

const (
	queryReaders  = 32
	queryOrders   = 10000
	queryDeadline = 30 * time.Second
)

func benchQueries(b *testing.B, tg target) {
	ctx := waitCtx(b)
	es := openEventStore(b)
	appendCases(b, es) // a few orders with refunds, for /v1/refunds
	head := fillOrders(b, es, queryOrders)
	m := tg.openManager(b, es)
	defer m.Close()
	store, runner := m.Current()
	if err := runner.WaitFor(ctx, head); err != nil {
		b.Fatal(err)
	}
	ids := orderIDs(b, store)
	mux := http.NewServeMux()
	projections.NewAPI(m, nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: queryReaders}, Timeout: 10 * time.Second}
	lists := []string{"/v1/payments?status=paid&limit=50", "/v1/shipments?status=delivered&limit=50",
		"/v1/shipments?status=not_shipped&payment_status=paid", "/v1/refunds?limit=50"}
	query := func(i int) string {
		if i%2 == 0 { // half the queries read one order
			return "/v1/orders/" + ids[rand.IntN(len(ids))]
		}
		return lists[(i/2)%len(lists)]
	}

	var next atomic.Int64
	latencies := make([][]time.Duration, queryReaders)
	deadline := time.Now().Add(queryDeadline)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for r := range queryReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N || time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				if err := get(client, srv.URL+query(i)); err != nil {
					b.Error(err)
					return
				}
				latencies[r] = append(latencies[r], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(latencies...)
	if len(all) == 0 {
		b.Fatal("no query finished")
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "queries/s")
	if len(all) < b.N {
		b.Logf("stopped at the %v bound after %d of %d queries", queryDeadline, len(all), b.N)
	}
}

// get fetches url and reads the whole answer, which must be 200 OK.
func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// orderIDs lists the IDs of every order in the read models.
func orderIDs(tb testing.TB, store *projections.Store) []string {
	tb.Helper()
	var ids []string
	q := projections.ListQuery{Limit: 500}
	for {
		page, err := store.ListPayments(context.Background(), q)
		if err != nil {
			tb.Fatal(err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.OrderID)
		}
		if page.NextCursor == "" {
			return ids
		}
		q.Cursor = page.NextCursor
	}
}
