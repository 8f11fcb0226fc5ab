//go:build containers

package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore"
)

// checkAll is how every scenario ends: no acknowledged command lost, none
// applied twice, the saga's decision once per order, exactly the stock
// that exists reserved, `ordo verify` clean and every read model equal to
// its order's history.
func (c *cluster) checkAll(t *testing.T, orders []*order, skus map[string]int64) {
	t.Helper()
	views := c.checkHistories(t, orders)
	c.checkStock(t, orders, views, skus)
	c.checkVerify(t)
	c.checkReadModels(t, views)
}

// checkHistories reads every order's stream: each acknowledged command's
// events are there (none lost), each command's events form one append
// (none doubled), the saga decided once. It returns each order as its
// history folds (the write side's view).
func (c *cluster) checkHistories(t *testing.T, orders []*order) map[string]domain.OrderView {
	t.Helper()
	views := map[string]domain.OrderView{}
	for _, o := range orders {
		var cmdIDs []string // command ID of each event, in order
		decisions := 0
		err := c.es.ReadStream(ctxT(t, time.Minute), "order-"+o.id, 0, func(e eventstore.RecordedEvent) error {
			ev, err := domain.DecodeEvent(e.Type, e.Data, e.Metadata)
			if err != nil {
				return err
			}
			if e.Type == domain.EvtStockReserved || e.Type == domain.EvtStockRejected {
				decisions++
			}
			cmdIDs = append(cmdIDs, ev.Meta.CommandID)
			return nil
		})
		if err != nil {
			t.Errorf("order %s: read its stream: %v", o.id, err)
			continue
		}
		for _, id := range o.acked {
			if !containsStr(cmdIDs, id) {
				t.Errorf("order %s: acknowledged command %s is not in its history: lost", o.id, id)
			}
		}
		for i := 1; i < len(cmdIDs); i++ {
			if cmdIDs[i] != cmdIDs[i-1] && containsStr(cmdIDs[:i-1], cmdIDs[i]) {
				t.Errorf("order %s: command %s applied twice (events %v)", o.id, cmdIDs[i], cmdIDs)
			}
		}
		if decisions != 1 {
			t.Errorf("order %s: the saga's stock decision recorded %d times, want once", o.id, decisions)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := c.client.GetOrder(ctx, o.id)
		cancel()
		if err != nil {
			t.Errorf("order %s: %v", o.id, err)
			continue
		}
		if o.kind >= 0 && v.State != wantState[o.kind] {
			t.Errorf("order %s: %s after commands %v, want %s", o.id, v.State, o.acked, wantState[o.kind])
		}
		views[o.id] = v
	}
	t.Logf("%d order histories checked", len(orders))
	return views
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkStock waits for the saga to have caught up and compares each SKU with
// its orders: on hand is what was added less what shipped, reserved is what
// orders awaiting payment or paid hold.
func (c *cluster) checkStock(t *testing.T, orders []*order, views map[string]domain.OrderView, added map[string]int64) {
	t.Helper()
	want := map[string]domain.StockView{}
	for sku, n := range added {
		want[sku] = domain.StockView{SKU: sku, OnHand: n}
	}
	for _, o := range orders {
		v := views[o.id]
		for _, line := range v.Lines {
			w := want[line.SKU]
			switch v.State {
			case domain.StateAwaitingPayment, domain.StatePaid:
				w.Reserved += line.Quantity
			case domain.StateShipped, domain.StateDelivered, domain.StateCompleted:
				w.OnHand -= line.Quantity
			}
			want[line.SKU] = w
		}
	}
	for sku, w := range want {
		var got domain.StockView
		deadline := time.Now().Add(2 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var err error
			got, err = c.client.GetStock(ctx, sku)
			cancel()
			if err == nil && got.OnHand == w.OnHand && got.Reserved == w.Reserved {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("stock of %s: on hand %d, reserved %d (%v); want %d on hand, %d reserved by its orders",
					sku, got.OnHand, got.Reserved, err, w.OnHand, w.Reserved)
				c.explainStock(t, sku, views)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// checkVerify runs `ordo verify` in an Ordo container against the event
// store, as an operator would.
func (c *cluster) checkVerify(t *testing.T) {
	t.Helper()
	code, out := c.exec(c.ordo[1], "/ordo", "verify", "--esdb-url", esdbURL, "--stock", "ordo", "--quiet")
	if code != 0 {
		t.Errorf("ordo verify: exit status %d:\n%s", code, tailLines(out, 30))
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// summary is what the read model (PostgreSQL, through an instance's query
// API) says of an order.
type summary struct {
	State    string `json:"state"`
	Revision int64  `json:"revision"`
	Payment  struct {
		Paid     int64 `json:"paid"`
		Refunded int64 `json:"refunded"`
	} `json:"payment"`
	Shipping struct {
		Status string `json:"status"`
	} `json:"shipping"`
}

// checkReadModels waits for every order's read model, on both instances'
// query APIs, to reach its history's revision and compares them.
func (c *cluster) checkReadModels(t *testing.T, views map[string]domain.OrderView) {
	t.Helper()
	hc := http.Client{Timeout: 10 * time.Second}
	// One deadline for all: the read models catch up together, and a stuck
	// projection must not cost a minute per order.
	deadline := time.Now().Add(2 * time.Minute)
	for id, v := range views {
		for _, o := range c.ordo {
			var got summary
			var err error
			for {
				got, err = readModel(&hc, o.addr("8080/tcp"), id)
				if err == nil && got.Revision >= v.Revision {
					break
				}
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			want := summary{State: string(v.State), Revision: v.Revision}
			want.Payment.Paid, want.Payment.Refunded = v.Received.Amount, v.Refunded.Amount
			want.Shipping.Status = shippingStatus(v.State)
			if err != nil || got != want {
				t.Errorf("order %s through %s: read model %+v (%v), history says %+v", id, o.name, got, err, want)
			}
		}
	}
	t.Logf("%d read models compared with their histories on %d instances", len(views), len(c.ordo))
}

func readModel(hc *http.Client, addr, id string) (summary, error) {
	var s summary
	resp, err := hc.Get("http://" + addr + "/v1/orders/" + id)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /v1/orders/%s: %s", id, resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// shippingStatus is the shipping read model's status for an order of the
// load in a state (none of them is refunded after shipping, so a refunded
// order ended before it shipped).
func shippingStatus(s domain.State) string {
	switch s {
	case domain.StateCancelled, domain.StateRefunded:
		return "cancelled"
	case domain.StateShipped:
		return "shipped"
	case domain.StateDelivered, domain.StateCompleted:
		return "delivered"
	}
	return "not_shipped"
}

// explainStock names the orders whose units the SKU's stream holds other
// than their state says (reserved while awaiting payment or paid, else
// none), with that stream's events for them, so that a failed stock check
// says which orders to look at.
func (c *cluster) explainStock(t *testing.T, sku string, views map[string]domain.OrderView) {
	t.Helper()
	held := map[string]int64{}
	trail := map[string][]string{}
	err := c.es.ReadStream(ctxT(t, time.Minute), domain.StockStream(sku), 0, func(e eventstore.RecordedEvent) error {
		switch e.Type {
		case domain.EvtInventoryReserved:
			var ev domain.InventoryReserved
			if err := json.Unmarshal(e.Data, &ev); err != nil {
				return err
			}
			for _, r := range ev.Reservations() {
				held[r.OrderID] += r.Quantity
				trail[r.OrderID] = append(trail[r.OrderID], fmt.Sprintf("#%d reserved %d", e.Revision, r.Quantity))
			}
		case domain.EvtInventoryReleased, domain.EvtInventoryCommitted:
			var ev domain.InventoryReleased // both have the same fields
			if err := json.Unmarshal(e.Data, &ev); err != nil {
				return err
			}
			held[ev.OrderID] -= ev.Quantity
			trail[ev.OrderID] = append(trail[ev.OrderID], fmt.Sprintf("#%d %s %d", e.Revision, e.Type, ev.Quantity))
		}
		return nil
	})
	if err != nil {
		t.Logf("stock of %s: read its stream: %v", sku, err)
		return
	}
	for id, v := range views {
		var want int64
		for _, line := range v.Lines {
			if line.SKU == sku && (v.State == domain.StateAwaitingPayment || v.State == domain.StatePaid) {
				want += line.Quantity
			}
		}
		if held[id] != want {
			t.Logf("stock of %s: order %s (%s) holds %d units, want %d: %v", sku, id, v.State, held[id], want, trail[id])
		}
	}
}
