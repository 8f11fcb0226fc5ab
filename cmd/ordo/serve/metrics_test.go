package serve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestScrapePartFailureIsCounted: a part that cannot be computed is left
// out of the scrape and counted in ordo_metrics_scrape_errors_total; the
// scrape itself succeeds with every other metric.
func TestScrapePartFailureIsCounted(t *testing.T) {
	m := newMetrics()
	good := prometheus.NewDesc("ordo_test_good", "a part that works", nil, nil)
	half := prometheus.NewDesc("ordo_test_half", "a part that fails after one metric", nil, nil)
	for _, p := range []scrapePart{
		{name: "good", descs: []*prometheus.Desc{good}, collect: func(_ context.Context, ch chan<- prometheus.Metric) error {
			ch <- gauge(good, 7)
			return nil
		}},
		{name: "broken", descs: []*prometheus.Desc{half}, collect: func(_ context.Context, ch chan<- prometheus.Metric) error {
			ch <- gauge(half, 1)
			return errors.New("the read models do not answer")
		}},
	} {
		p.errors = m.scrapeErrors.WithLabelValues(p.name)
		m.reg.MustRegister(p)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	defer srv.Close()
	for i := 1; i <= 2; i++ {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape %d: %s, want 200 OK", i, resp.Status)
		}
		for _, want := range []string{"ordo_test_good 7", `ordo_metrics_scrape_errors_total{part="broken"}`, "go_goroutines"} {
			if !strings.Contains(body, want) {
				t.Errorf("scrape %d lacks %q:\n%s", i, want, body)
			}
		}
		if strings.Contains(body, "ordo_test_half ") {
			t.Errorf("scrape %d has the failed part's metric, want it left out", i)
		}
	}
	if n := testutil.ToFloat64(m.scrapeErrors.WithLabelValues("broken")); n != 2 {
		t.Errorf("scrape errors of the broken part: got %v after 2 scrapes, want 2", n)
	}
	if n := testutil.ToFloat64(m.scrapeErrors.WithLabelValues("good")); n != 0 {
		t.Errorf("scrape errors of the good part: got %v, want 0", n)
	}
}

// BenchmarkCommandMetrics is what the workers pay per answered command
// for its metrics (a counter and a latency observation), alone and with
// every core answering commands at once.
func BenchmarkCommandMetrics(b *testing.B) {
	m := newMetrics()
	accepted := time.Now()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.CommandAnswered("PlaceOrder", "ok", accepted)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.CommandAnswered("ConfirmPayment", "ok", accepted)
			}
		})
	})
}
