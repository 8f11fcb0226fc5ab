package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// TestMetrics: GET /metrics on the service's HTTP listener shows what the
// service did: commands by type and code with their latency, the event
// store's commits, the dead letter of a bad command, the payment timer of
// an order awaiting payment, the stuck-order and stock figures, the
// saga, the NATS consumer, and the Go runtime.
func TestMetrics(t *testing.T) {
	s := start(t, sagaConfig(t, t.TempDir(), time.Hour))
	ctx := ctxT(t)
	if _, err := s.client.AddStock(ctx, "metrics-sku", 10, ""); err != nil {
		t.Fatal(err)
	}
	paid, waiting := uuid.NewString(), uuid.NewString()
	must(t)(s.client.PlaceOrder(ctx, oneLine(paid, "metrics-sku", 2)))
	must(t)(s.client.PlaceOrder(ctx, oneLine(waiting, "metrics-sku", 3)))
	views := settle(t, ctx, s.client, []string{paid, waiting})
	if views[paid].State != domain.StateAwaitingPayment {
		t.Fatalf("order %s is %s, want awaiting_payment", paid, views[paid].State)
	}
	must(t)(s.client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: paid, PaymentID: "p-1", Amount: 200}))
	// A command that is not JSON: refused and dead-lettered.
	bad := natsgo.NewMsg(ordonats.CommandSubject(uuid.NewString(), domain.CmdPlaceOrder))
	bad.Data = []byte("{not json")
	bad.Header.Set(ordonats.HeaderCommandID, uuid.NewString())
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, bad); err != nil {
		t.Fatal(err)
	}

	url := "http://" + s.svc.HTTPAddr() + "/metrics"
	want := []struct {
		name   string
		labels map[string]string
		ok     func(float64) bool
		what   string
	}{
		{"ordo_commands_total", map[string]string{"type": "PlaceOrder", "code": "ok"}, eq(2), "2"},
		{"ordo_commands_total", map[string]string{"type": "ConfirmPayment", "code": "ok"}, eq(1), "1"},
		{"ordo_commands_total", map[string]string{"type": "PlaceOrder", "code": "invalid_command"}, eq(1), "1"},
		{"ordo_command_duration_seconds", map[string]string{"type": "PlaceOrder"}, eq(3), "3 observations (the refused one too)"},
		{"ordo_dead_letters_total", map[string]string{"code": "invalid_command"}, eq(1), "1"},
		{"ordo_eventstore_appends_total", nil, gt(4), "> 4"},
		{"ordo_eventstore_events_total", nil, gt(4), "> 4"},
		{"ordo_eventstore_bytes_total", nil, gt(500), "> 500"},
		{"ordo_eventstore_group_commit_size", nil, gt(0), "> 0 observations"},
		{"ordo_eventstore_append_seconds", nil, gt(0), "> 0 observations"},
		{"ordo_payment_timers_pending", nil, eq(1), "1 (the unpaid order's)"},
		{"ordo_orders_in_state", map[string]string{"state": "awaiting_payment"}, eq(1), "1"},
		{"ordo_orders_in_state", map[string]string{"state": "paid"}, eq(1), "1"},
		{"ordo_orders_in_state_longer_than", map[string]string{"state": "paid", "age": "24h"}, eq(0), "0"},
		{"ordo_stock_available", map[string]string{"sku": "metrics-sku"}, eq(5), "5"},
		{"ordo_stock_reserved", map[string]string{"sku": "metrics-sku"}, eq(5), "5"},
		{"ordo_projection_lag_positions", nil, eq(0), "0 (caught up)"},
		{"ordo_saga_in_flight", nil, eq(0), "0"},
		{"ordo_saga_events_handled_total", nil, gt(0), "> 0"},
		{"ordo_saga_running", nil, eq(1), "1"},
		{"ordo_nats_consumer_pending", nil, eq(0), "0"},
		{"ordo_nats_consumer_redelivered", nil, eq(0), "0"},
		{"go_goroutines", nil, gt(0), "> 0"},
		{"process_resident_memory_bytes", nil, gt(0), "> 0"},
	}
	var families map[string]*dto.MetricFamily
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		families = scrape(t, url)
		missing = missing[:0]
		for _, w := range want {
			v, found := value(families[w.name], w.labels)
			if !found || !w.ok(v) {
				missing = append(missing, fmt.Sprintf("%s%v = %v (found: %t), want %s", w.name, w.labels, v, found, w.what))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Fatalf("metrics not as expected:\n%s", strings.Join(missing, "\n"))
	}
	if errs := families["ordo_metrics_scrape_errors_total"]; errs != nil {
		for _, m := range errs.Metric {
			if m.GetCounter().GetValue() > 0 {
				t.Errorf("scrape errors while every part runs: %v", m)
			}
		}
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func gt(min float64) func(float64) bool  { return func(v float64) bool { return v > min } }

// scrape reads the metrics in Prometheus' text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics is not Prometheus' text format: %v", err)
	}
	return fams
}

// value is the value of the family's metric with labels (a counter, gauge
// or untyped value; a histogram's count of observations).
func value(f *dto.MetricFamily, labels map[string]string) (float64, bool) {
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}
