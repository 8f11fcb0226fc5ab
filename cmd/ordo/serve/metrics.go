package serve

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ordo-dev/ordo/eventstore"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// This file is the service's Prometheus metrics, served at GET /metrics
// from a registry of the service's own (two services in one process, as
// in the tests, do not mix their figures). What happens on the hot paths
// (commands answered, group commits) is counted as it happens, into
// metrics looked up once; what the service can tell by asking (read-model
// lag, saga, NATS consumer, timers, stuck orders, stock) is asked at
// scrape time, each part with a deadline. A part that cannot be asked is
// left out of that scrape and counted in ordo_metrics_scrape_errors_total,
// never a failed scrape: the other figures matter most during an outage.

// Buckets of the latency histograms, in seconds: a command normally takes
// milliseconds; an outage holds commands for seconds to minutes.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// stuckAges are the durations ordo_orders_in_state_longer_than counts
// orders by (label age).
var stuckAges = []struct {
	label string
	d     time.Duration
}{{"15m", 15 * time.Minute}, {"1h", time.Hour}, {"24h", 24 * time.Hour}, {"72h", 72 * time.Hour}}

// busiestSKUs bounds ordo_stock_available: the SKUs with the most commands
// lately, not one series per SKU ever sold.
const busiestSKUs = 20

// scrapeTimeout bounds each part asked at scrape time; Prometheus' own
// scrape timeout defaults to 10 s.
const scrapeTimeout = 3 * time.Second

// metrics holds the registry and the metrics updated as things happen.
type metrics struct {
	reg *prometheus.Registry

	commands     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	deadLetters  *prometheus.CounterVec
	scrapeErrors *prometheus.CounterVec

	appends, events, bytes, commitFailures prometheus.Counter
	groupSize, appendSeconds               prometheus.Histogram

	// byType and byTypeCode cache the command metrics of each type (and
	// code) met so far: a command then costs a lock-free map lookup and two
	// atomic adds instead of hashing label values, and only the types and
	// codes that occur are exposed.
	byType     sync.Map // string → prometheus.Observer
	byTypeCode sync.Map // typeCode → prometheus.Counter
}

type typeCode struct{ typ, code string }

var _ ordonats.CommandObserver = (*metrics)(nil)

// newMetrics builds the registry with the Go runtime and process
// collectors and the metrics counted as things happen.
func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordo_commands_total",
		Help: "Commands answered by the workers, by command type and outcome code (ok for success)."}, []string{"type", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ordo_command_duration_seconds",
		Help: "Time from a command's acceptance (stored in the command stream) to its reply, by command type.", Buckets: latencyBuckets}, []string{"type"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordo_dead_letters_total",
		Help: "Commands recorded as dead letters, by error code."}, []string{"code"})
	m.scrapeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordo_metrics_scrape_errors_total",
		Help: "Parts of a scrape that could not be computed (left out of that scrape), by part."}, []string{"part"})
	m.appends = prometheus.NewCounter(prometheus.CounterOpts{Name: "ordo_eventstore_appends_total",
		Help: "Writes committed by the embedded event store."})
	m.events = prometheus.NewCounter(prometheus.CounterOpts{Name: "ordo_eventstore_events_total",
		Help: "Events committed by the embedded event store."})
	m.bytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "ordo_eventstore_bytes_total",
		Help: "Bytes of event data and metadata committed by the embedded event store."})
	m.commitFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "ordo_eventstore_commit_failures_total",
		Help: "Group commits of the embedded event store that failed (disk full, I/O error)."})
	m.groupSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordo_eventstore_group_commit_size",
		Help: "Writes that shared one synced commit of the embedded event store.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	m.appendSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ordo_eventstore_append_seconds",
		Help: "Time the embedded event store took to decide, write and sync one group commit (what each append in it waited).", Buckets: latencyBuckets})
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commands, m.latency, m.deadLetters, m.scrapeErrors,
		m.appends, m.events, m.bytes, m.commitFailures, m.groupSize, m.appendSeconds)
	return m
}

// CommandAnswered implements ordonats.CommandObserver.
func (m *metrics) CommandAnswered(commandType, code string, accepted time.Time) {
	c, ok := m.byTypeCode.Load(typeCode{commandType, code})
	if !ok {
		c, _ = m.byTypeCode.LoadOrStore(typeCode{commandType, code}, m.commands.WithLabelValues(commandType, code))
	}
	c.(prometheus.Counter).Inc()
	if accepted.IsZero() {
		return
	}
	o, ok := m.byType.Load(commandType)
	if !ok {
		o, _ = m.byType.LoadOrStore(commandType, m.latency.WithLabelValues(commandType))
	}
	o.(prometheus.Observer).Observe(time.Since(accepted).Seconds())
}

// DeadLettered implements ordonats.CommandObserver.
func (m *metrics) DeadLettered(code string) { m.deadLetters.WithLabelValues(code).Inc() }

// onCommit observes one group commit of the embedded store.
func (m *metrics) onCommit(c eventstore.Commit) {
	if c.Failed {
		m.commitFailures.Inc()
		return
	}
	m.appends.Add(float64(c.Appends))
	m.events.Add(float64(c.Events))
	m.bytes.Add(float64(c.Bytes))
	m.groupSize.Observe(float64(c.Appends))
	m.appendSeconds.Observe(c.Duration.Seconds())
}

// registerMetrics serves GET /metrics and adds the parts asked at scrape
// time, which need the running service.
func (s *Service) registerMetrics(mux *http.ServeMux) {
	m := s.metrics
	for _, p := range []scrapePart{s.projectionPart(), s.sagaPart(), s.natsPart(), s.timersPart(), s.stuckPart(), s.stockPart()} {
		p.errors = m.scrapeErrors.WithLabelValues(p.name)
		m.reg.MustRegister(p)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
}

// scrapePart is a group of metrics computed at scrape time. collect sends
// its metrics, or returns an error: the part's metrics are then left out
// and its scrape error counted.
type scrapePart struct {
	name    string
	descs   []*prometheus.Desc
	collect func(ctx context.Context, ch chan<- prometheus.Metric) error
	errors  prometheus.Counter
}

func (p scrapePart) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range p.descs {
		ch <- d
	}
}

func (p scrapePart) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	// Metrics are held back until the part succeeds, so a part that fails
	// half-way sends nothing rather than a misleading half.
	var got []prometheus.Metric
	buf := make(chan prometheus.Metric)
	done := make(chan error, 1)
	go func() {
		defer close(buf)
		done <- p.collect(ctx, buf)
	}()
	for mt := range buf {
		got = append(got, mt)
	}
	if err := <-done; err != nil {
		p.errors.Inc()
		return
	}
	for _, mt := range got {
		ch <- mt
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// projectionPart: how far the read models are behind the event store.
func (s *Service) projectionPart() scrapePart {
	lagPos := prometheus.NewDesc("ordo_projection_lag_positions", "$all positions the read models are behind the event store's head.", nil, nil)
	lagSec := prometheus.NewDesc("ordo_projection_lag_seconds", "Age of the last event the read models applied while they are behind the head (0 when caught up).", nil, nil)
	pos := prometheus.NewDesc("ordo_projection_position", "$all position up to which the read models applied every event.", nil, nil)
	standby := prometheus.NewDesc("ordo_projection_standby", "1 while another instance keeps the shared read models current (it holds the projections lease).", nil, nil)
	fenced := prometheus.NewDesc("ordo_projection_fenced_batches_total", "Read-model batches rolled back because another instance had advanced the checkpoint first.", nil, nil)
	return scrapePart{name: "projection", descs: []*prometheus.Desc{lagPos, lagSec, pos, standby, fenced},
		collect: func(ctx context.Context, ch chan<- prometheus.Metric) error {
			if _, err := s.store.Head(ctx); err != nil {
				return err // the runner's lag would read 0 without the head
			}
			_, r := s.reads.Current()
			if r == nil {
				return errNotRunning
			}
			st := r.Status(ctx)
			ch <- gauge(lagPos, float64(st.LagEvents))
			ch <- gauge(lagSec, st.LagSeconds)
			ch <- gauge(pos, float64(st.Position))
			ch <- gauge(standby, b2f(st.Standby))
			ch <- counter(fenced, float64(st.Fenced))
			return nil
		}}
}

// errNotRunning: the read models are not open (yet).
var errNotRunning = errors.New("the read models are not open")

// sagaPart: the order saga's progress.
func (s *Service) sagaPart() scrapePart {
	inFlight := prometheus.NewDesc("ordo_saga_in_flight", "Order events the saga received and has not finished handling.", nil, nil)
	retries := prometheus.NewDesc("ordo_saga_step_retries_total", "Saga steps that failed and were tried again.", nil, nil)
	handled := prometheus.NewDesc("ordo_saga_events_handled_total", "Order events the saga handled.", nil, nil)
	checkpoint := prometheus.NewDesc("ordo_saga_checkpoint_position", "$all position of the saga's checkpoint on disk (a restart resumes there).", nil, nil)
	position := prometheus.NewDesc("ordo_saga_position", "$all position up to which the saga handled every order event.", nil, nil)
	running := prometheus.NewDesc("ordo_saga_running", "1 while the saga's subscription runs.", nil, nil)
	return scrapePart{name: "saga", descs: []*prometheus.Desc{inFlight, retries, handled, checkpoint, position, running},
		collect: func(_ context.Context, ch chan<- prometheus.Metric) error {
			st := s.saga.Status()
			ch <- gauge(inFlight, float64(st.InFlight))
			ch <- counter(retries, float64(st.Retries))
			ch <- counter(handled, float64(st.Handled))
			ch <- gauge(checkpoint, float64(st.Saved))
			ch <- gauge(position, float64(st.Position))
			ch <- gauge(running, b2f(st.Running))
			return nil
		}}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// natsPart: the command workers' JetStream consumer.
func (s *Service) natsPart() scrapePart {
	pending := prometheus.NewDesc("ordo_nats_consumer_pending", "Commands stored in the command stream and not yet delivered to a worker.", nil, nil)
	ackPending := prometheus.NewDesc("ordo_nats_consumer_ack_pending", "Commands delivered to the workers and not yet acknowledged.", nil, nil)
	redelivered := prometheus.NewDesc("ordo_nats_consumer_redelivered", "Commands in flight that were delivered more than once.", nil, nil)
	return scrapePart{name: "nats", descs: []*prometheus.Desc{pending, ackPending, redelivered},
		collect: func(ctx context.Context, ch chan<- prometheus.Metric) error {
			b, err := ordonats.Backlog(ctx, mustJS(s.nc))
			if err != nil {
				return err
			}
			ch <- gauge(pending, float64(b.Pending))
			ch <- gauge(ackPending, float64(b.AckPending))
			ch <- gauge(redelivered, float64(b.Redelivered))
			return nil
		}}
}

// timersPart: payment timers waiting to fire.
func (s *Service) timersPart() scrapePart {
	pending := prometheus.NewDesc("ordo_payment_timers_pending", "Payment timers scheduled that have neither fired nor been cancelled.", nil, nil)
	return scrapePart{name: "timers", descs: []*prometheus.Desc{pending},
		collect: func(ctx context.Context, ch chan<- prometheus.Metric) error {
			ch <- gauge(pending, float64(s.saga.PendingTimers()))
			return nil
		}}
}

// stuckPart: unfinished orders by state and by how long they have been in
// it, from the read models (one grouped query).
func (s *Service) stuckPart() scrapePart {
	inState := prometheus.NewDesc("ordo_orders_in_state", "Orders in each unfinished state (read models).", []string{"state"}, nil)
	older := prometheus.NewDesc("ordo_orders_in_state_longer_than", "Orders that have been in an unfinished state for longer than age (read models).", []string{"state", "age"}, nil)
	ages := make([]time.Duration, len(stuckAges))
	for i, a := range stuckAges {
		ages[i] = a.d
	}
	return scrapePart{name: "orders", descs: []*prometheus.Desc{inState, older},
		collect: func(ctx context.Context, ch chan<- prometheus.Metric) error {
			st, _ := s.reads.Current()
			if st == nil {
				return errNotRunning
			}
			rows, err := st.StateAges(ctx, time.Now(), ages)
			if err != nil {
				return err
			}
			for _, r := range rows {
				ch <- gauge(inState, float64(r.Total), r.State)
				for i, n := range r.OlderThan {
					ch <- gauge(older, float64(n), r.State, stuckAges[i].label)
				}
			}
			return nil
		}}
}

// stockPart: stock of the busiest SKUs.
func (s *Service) stockPart() scrapePart {
	avail := prometheus.NewDesc("ordo_stock_available", "Units available (on hand less reserved) of the "+strconv.Itoa(busiestSKUs)+
		" SKUs with the most stock commands lately.", []string{"sku"}, nil)
	reserved := prometheus.NewDesc("ordo_stock_reserved", "Units reserved of the same SKUs as ordo_stock_available.", []string{"sku"}, nil)
	return scrapePart{name: "stock", descs: []*prometheus.Desc{avail, reserved},
		collect: func(ctx context.Context, ch chan<- prometheus.Metric) error {
			for _, v := range s.stock.Busiest(ctx, busiestSKUs) {
				ch <- gauge(avail, float64(v.Available), v.SKU)
				ch <- gauge(reserved, float64(v.Reserved), v.SKU)
			}
			return ctx.Err()
		}}
}
