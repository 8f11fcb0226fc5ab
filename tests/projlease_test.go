package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
	"github.com/ordo-dev/ordo/projections"
	"github.com/ordo-dev/ordo/projections/projectionstest"
)

const projLeaseChildEnv = "ORDO_TEST_PROJLEASE_CHILD"

// TestProjectionsHolderKilled runs two `ordo serve` instances (child
// processes) on one NATS, one event store and one PostgreSQL database for
// the read models, under a bounded load of orders placed, paid, shipped,
// delivered, cancelled and refunded, and kills the instance that keeps the
// read models current (the holder of the lease "projections") with SIGKILL
// midway. The other instance, on standby until then, takes the lease over
// within seconds, and at the end every order's read model equals its
// history: the same rows as one runner applying the history once into a
// database of its own, and the state, revision and amounts folded from the
// order's stream.
func TestProjectionsHolderKilled(t *testing.T) {
	if os.Getenv(projLeaseChildEnv) != "" {
		serveChild(func(cfg *serve.Config) {
			cfg.PaymentTimeout, cfg.LeaseTTL = time.Hour, instancesLeaseTTL
			cfg.ReadModelDSN = os.Getenv("CHILD_READMODEL_DSN")
		})
		return
	}
	dsn := projectionstest.FreshPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns, es := parentServers(t, ctx, t.TempDir())
	t.Setenv("CHILD_READMODEL_DSN", dsn)
	dirs := map[string]*exec.Cmd{}
	for range 2 {
		dir := t.TempDir()
		cmd := startChild(t, "TestProjectionsHolderKilled", projLeaseChildEnv, ns, es, dir)
		dirs[dir] = cmd
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
			}
		})
	}
	nc, err := natsgo.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 60*time.Second, "the instances", func() bool {
		_, err := client.AddStock(ctx, "p", 100000, "stock-p")
		return err == nil
	})
	js, _ := jetstream.New(nc)
	leases, err := js.KeyValue(ctx, ordonats.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	holder := func() string {
		e, err := leases.Get(ctx, "projections")
		if err != nil {
			return ""
		}
		return string(e.Value())
	}
	eventually.True(t, 30*time.Second, "an instance to hold the projections lease", func() bool { return holder() != "" })
	before := holder()
	var victim *exec.Cmd
	var survivor string
	for dir, cmd := range dirs {
		if strings.HasSuffix(before, ":"+dir) {
			victim = cmd
		} else {
			survivor = dir
		}
	}
	if victim == nil {
		t.Fatalf("the projections lease is held by %q, neither instance (%v)", before, dirs)
	}
	eventually.True(t, 30*time.Second, "the other instance's projections on standby", func() bool {
		return strings.HasPrefix(projectionsReadiness(survivor), "standby: ")
	})

	const orders = 120
	ids, done, wait := startLifecycles(ctx, t, orders, 8, func(ctx context.Context, id string, kind int) error {
		return orderLifecycle(ctx, client, id, kind)
	})
	for done.Load() < orders/3 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	_ = victim.Process.Signal(syscall.SIGKILL)
	_ = victim.Wait()
	killed := time.Now()
	t.Logf("killed the projections lease holder after %d of %d orders went through their lifecycle", done.Load(), orders)
	eventually.True(t, 30*time.Second, "the other instance to take the projections lease", func() bool {
		h := holder()
		return h != "" && h != before
	})
	t.Logf("the projections moved to the other instance %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	eventually.True(t, 30*time.Second, "the survivor's projections up", func() bool { return projectionsReadiness(survivor) == "up" })
	wait()
	if t.Failed() {
		t.FailNow()
	}

	store, err := eventstore.Connect(ctx, es.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var last uint64
	for _, id := range ids {
		err := store.ReadStream(ctx, "order-"+id, 0, func(e eventstore.RecordedEvent) error {
			last = max(last, e.Position)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	src := serve.ProjectionSource{Store: store}
	// The shared read models, read as a standby instance reads them: its
	// gate never lets it apply anything.
	shared, err := projections.OpenManagerConfig(ctx, projections.ManagerConfig{DSN: dsn, Source: src,
		Gate: func(ctx context.Context, _ func(context.Context) error) error { <-ctx.Done(); return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	// One runner applying the history once, into a database of its own.
	single, err := projections.OpenManagerDSN(ctx, projectionstest.FreshPostgres(t), "", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	sharedStore, sharedRunner := shared.Current()
	singleStore, singleRunner := single.Current()
	for _, r := range []*projections.Runner{sharedRunner, singleRunner} {
		if err := r.WaitFor(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	got, err := projectionstest.Dump(ctx, sharedStore, ids)
	if err != nil {
		t.Fatal(err)
	}
	want, err := projectionstest.Dump(ctx, singleStore, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s:\n got %s\nwant %s", k, got[k], v)
			}
		}
		t.Fatalf("the shared read models differ from one application of the history (%d rows)", len(want))
	}
	if g, w := sharedRunner.Status(ctx).Events, singleRunner.Status(ctx).Events; g != w {
		t.Errorf("events the shared read models applied: %d; one application of the history applies %d", g, w)
	}
	for _, id := range ids {
		v, err := client.GetOrder(ctx, id) // folded from the order's stream
		if err != nil {
			t.Fatal(err)
		}
		o, err := sharedStore.GetOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if o.State != string(v.State) || o.Revision != v.Revision || o.Payment.Paid != v.Received.Amount || o.Payment.Refunded != v.Refunded.Amount {
			t.Errorf("order %s: read model state %s revision %d paid %d refunded %d; its stream says %s, %d, %d, %d",
				id, o.State, o.Revision, o.Payment.Paid, o.Payment.Refunded, v.State, v.Revision, v.Received.Amount, v.Refunded.Amount)
		}
	}
}

// projectionsReadiness is the projections part of an instance's /readyz.
func projectionsReadiness(dataDir string) string {
	rt, ok, err := serve.ReadRuntime(dataDir)
	if err != nil || !ok {
		return ""
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + rt.HTTPAddr + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var rd serve.Readiness
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &rd) != nil {
		return ""
	}
	return rd.Parts["projections"]
}

// orderLifecycle takes one order through a lifecycle of the load: kind 0
// is paid, shipped and partly refunded; 1 paid, shipped and delivered; 2
// paid and cancelled (refunded in full, automatically); 3 left awaiting
// payment. Each command is sent again under its ID until it is answered,
// so an instance killed mid-command applies it once all the same.
func orderLifecycle(ctx context.Context, client *ordonats.Client, id string, kind int) error {
	send := func(what string, f func(ctx context.Context, opt ordonats.SendOption) error) error {
		return sendUntilAnswered(ctx, what, f)
	}
	place := domain.PlaceOrder{Order: id, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: "p", Quantity: 1, UnitPrice: 1000}}}
	if err := send("place", func(ctx context.Context, opt ordonats.SendOption) error {
		_, err := client.PlaceOrder(ctx, place, opt)
		return err
	}); err != nil {
		return err
	}
	// The saga reserves the stock (on whichever instance holds its lease).
	if err := awaitAwaitingPayment(ctx, client, id, 60*time.Second); err != nil {
		return err
	}
	if kind == 3 {
		return nil
	}
	type step struct {
		what string
		f    func(ctx context.Context, opt ordonats.SendOption) error
	}
	steps := []step{{"pay", func(ctx context.Context, opt ordonats.SendOption) error {
		_, err := client.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "pay-" + id, Amount: 1000, Currency: "EUR"}, opt)
		return err
	}}}
	ship := func(ctx context.Context, opt ordonats.SendOption) error {
		_, err := client.ShipOrder(ctx, domain.ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "T-" + id}, opt)
		return err
	}
	switch kind {
	case 0:
		steps = append(steps, step{"ship", ship}, step{"refund", func(ctx context.Context, opt ordonats.SendOption) error {
			_, err := client.RequestRefund(ctx, domain.RequestRefund{Order: id, RefundID: "r1", Amount: 300, Currency: "EUR", Reason: "scratch"}, opt)
			return err
		}}, step{"complete refund", func(ctx context.Context, opt ordonats.SendOption) error {
			_, err := client.CompleteRefund(ctx, domain.CompleteRefund{Order: id, RefundID: "r1"}, opt)
			return err
		}})
	case 1:
		steps = append(steps, step{"ship", ship}, step{"deliver", func(ctx context.Context, opt ordonats.SendOption) error {
			_, err := client.ConfirmDelivery(ctx, domain.ConfirmDelivery{Order: id}, opt)
			return err
		}})
	case 2:
		steps = append(steps, step{"cancel", func(ctx context.Context, opt ordonats.SendOption) error {
			_, err := client.CancelOrder(ctx, domain.CancelOrder{Order: id, Reason: "changed mind"}, opt)
			return err
		}})
	}
	for _, s := range steps {
		if err := send(s.what, s.f); err != nil {
			return err
		}
	}
	return nil
}

// TestProjectionsLeaseReleasedOnShutdown: of two instances on one
// PostgreSQL database for the read models, the one on standby answers
// queries from the read models the holder keeps current, and takes the
// projections over when the holder shuts down cleanly, without waiting
// for the lease to expire (its TTL here is far longer than the wait).
func TestProjectionsLeaseReleasedOnShutdown(t *testing.T) {
	dsn := projectionstest.FreshPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, es := parentServers(t, ctx, t.TempDir())
	const ttl = time.Minute
	instance := func() (svc *serve.Service, shutdown func() error) {
		svc, err := serve.Start(ctx, serve.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0",
			NATSURL: ns.ClientURL(), ESDBURL: es.URL(), ReadModelDSN: dsn, LeaseTTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		shutdown = func() error {
			once.Do(func() {
				sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err = svc.Shutdown(sctx)
			})
			return err
		}
		t.Cleanup(func() { _ = shutdown() })
		return svc, shutdown
	}
	holder, stopHolder := instance()
	eventually.True(t, 30*time.Second, "the first instance's projections up", func() bool {
		return holder.Readiness(ctx).Parts["projections"] == "up"
	})
	standby, _ := instance()
	eventually.True(t, 30*time.Second, "the second instance ready, its projections on standby", func() bool {
		rd := standby.Readiness(ctx)
		return rd.Ready && strings.HasPrefix(rd.Parts["projections"], "standby: ")
	})

	nc, err := natsgo.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	placeAndRead := func() {
		t.Helper()
		id := uuid.NewString()
		if _, err := client.PlaceOrder(ctx, domain.PlaceOrder{Order: id, CustomerID: "c", Currency: "EUR",
			Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 100}}}); err != nil {
			t.Fatal(err)
		}
		eventually.True(t, 30*time.Second, "order "+id+" in the standby's read models", func() bool {
			resp, err := http.Get("http://" + standby.HTTPAddr() + "/v1/orders/" + id)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	placeAndRead() // applied by the holder, read on the standby

	if err := stopHolder(); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, ttl/2, "the projections taken over", func() bool {
		return standby.Readiness(ctx).Parts["projections"] == "up"
	})
	placeAndRead() // applied by the former standby itself
}
