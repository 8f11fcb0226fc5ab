package tests

import (
	"context"
	"encoding/json"
	"github.com/ordo-dev/ordo/eventually"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// TestStandbyReadsStockFromTheWriter: of two instances on one NATS and one
// event store, the second stands by for the writer lease (/readyz says so
// and is ready). Its GET /v1/stock answers what the writer holds now, also
// after the writer changed the stock since the standby last read it.
func TestStandbyReadsStockFromTheWriter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, es := parentServers(t, ctx, t.TempDir())
	instance := func() *serve.Service {
		svc, err := serve.Start(ctx, serve.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0",
			NATSURL: ns.ClientURL(), ESDBURL: es.URL(), LeaseTTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = svc.Shutdown(sctx)
		})
		return svc
	}
	writer := instance()
	standby := instance()
	// Start returns before the supervisor has marked every part up.
	eventually.True(t, 30*time.Second, "both instances ready", func() bool {
		return standby.Readiness(ctx).Ready && writer.Readiness(ctx).Ready
	})
	rd := standby.Readiness(ctx)
	if !rd.Ready || !strings.HasPrefix(rd.Parts["saga"], "standby: ") || !strings.HasPrefix(rd.Parts["stock"], "standby: ") {
		t.Fatalf("the second instance's readiness: %+v; want ready, saga and stock on standby", rd)
	}
	if rd := writer.Readiness(ctx); !rd.Ready || rd.Parts["saga"] != "up" || rd.Parts["stock"] != "up" {
		t.Fatalf("the first instance's readiness: %+v; want saga and stock up", rd)
	}
	nc, err := natsgo.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := ordonats.NewClient(nc, ordonats.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	get := func(svc *serve.Service) domain.StockView {
		t.Helper()
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + svc.HTTPAddr() + "/v1/stock/s")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v domain.StockView
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
			t.Fatalf("GET /v1/stock/s: %d", resp.StatusCode)
		}
		return v
	}
	if _, err := client.AddStock(ctx, "s", 5, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	if v := get(standby); v.OnHand != 5 {
		t.Fatalf("the standby's first read: %+v, want 5 on hand", v)
	}
	if _, err := client.AddStock(ctx, "s", 3, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	if v := get(standby); v.OnHand != 8 || v.Revision != get(writer).Revision {
		t.Fatalf("the standby after the writer added 3: %+v; want 8 on hand, the writer's revision", v)
	}
}
