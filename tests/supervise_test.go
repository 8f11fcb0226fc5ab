package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventually"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// readyz is one answer of GET /readyz.
func readyz(t *testing.T, s *system) (int, serve.Readiness) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + s.svc.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rd serve.Readiness
	if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	return resp.StatusCode, rd
}

// TestWorkersRestartedAfterTheirConsumerIsDeleted: the command workers'
// consumer is deleted under a running service (an operator's mistake, a
// JetStream that lost it); the supervisor starts the workers again, they
// set their consumer up again, and commands are answered again.
func TestWorkersRestartedAfterTheirConsumerIsDeleted(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	must(t)(s.client.PlaceOrder(ctx, placeCmd(uuid.NewString())))
	if code, rd := readyz(t, s); code != http.StatusOK || !rd.Ready || rd.Parts["workers"] != "up" {
		t.Fatalf("/readyz before: %d %+v", code, rd)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, ordonats.StreamCommands, ordonats.ConsumerWorkers); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 60*time.Second, "the consumer set up again", func() bool {
		_, err := js.Consumer(ctx, ordonats.StreamCommands, ordonats.ConsumerWorkers)
		return err == nil
	})
	id := uuid.NewString()
	must(t)(s.client.PlaceOrder(ctx, placeCmd(id)))
	if o := must(t)(s.client.CancelOrder(ctx, domain.CancelOrder{Order: id, Reason: "customer asked"})); o.State != "cancelled" {
		t.Fatalf("cancel after the restart: %+v", o)
	}
	eventually.True(t, 30*time.Second, "/readyz ready again", func() bool {
		code, rd := readyz(t, s)
		return code == http.StatusOK && rd.Parts["workers"] == "up"
	})
}

// TestReadyzNamesThePartThatIsDown: the workers cannot set their command
// stream up again (another stream took its subjects); /readyz answers 503
// naming the workers and the cause, while every other part is up; once the
// operator removes the other stream the workers come back and /readyz says
// ready.
func TestReadyzNamesThePartThatIsDown(t *testing.T) {
	cfg := config(t, t.TempDir())
	cfg.GiveUpAfter = 0 // never stop the service: this test looks at it while the part is down
	s := start(t, cfg)
	ctx := ctxT(t)
	code, rd := readyz(t, s)
	if code != http.StatusOK || !rd.Ready {
		t.Fatalf("/readyz of a fresh service: %d %+v", code, rd)
	}
	for _, p := range []string{"nats", "eventstore", "workers", "saga", "projections", "http", "timers", "stock"} {
		if rd.Parts[p] != "up" {
			t.Errorf("part %s: %q, want up", p, rd.Parts[p])
		}
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, ordonats.StreamCommands); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{ordonats.SubjectCommands}}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 60*time.Second, "/readyz naming the workers down", func() bool {
		code, rd = readyz(t, s)
		return code == http.StatusServiceUnavailable && !rd.Ready && strings.HasPrefix(rd.Parts["workers"], "down: ") &&
			strings.Contains(rd.Parts["workers"], "overlap") // the cause of the failed restarts
	})
	if rd.Parts["eventstore"] != "up" || rd.Parts["http"] != "up" {
		t.Fatalf("/readyz while the workers are down: %+v", rd)
	}
	t.Logf("/readyz: %+v", rd)
	if err := js.DeleteStream(ctx, "SQUATTER"); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 60*time.Second, "/readyz ready again", func() bool {
		code, rd = readyz(t, s)
		return code == http.StatusOK && rd.Ready
	})
	must(t)(s.client.PlaceOrder(ctx, placeCmd(uuid.NewString())))
}
