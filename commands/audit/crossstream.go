package audit

import (
	"fmt"
	"sort"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// The cross-stream check: an order that reached awaiting_payment
// (StockReserved) must have had its stock reserved, in the streams of its
// SKUs, when it did, and kept it until it was cancelled, refunded or
// shipped. Each stream alone can be legal while the pair is not: an order
// marked reserved by a client with nothing reserved, a reservation of
// another quantity, or one released while the order still counted on it.
//
// Which orders' stock is Ordo's to check is read from the events: with the
// service's --manual-stock another system keeps the stock and there is
// nothing in Ordo's SKU streams to hold the order to. An order's stock is
// Ordo's when
//
//   - its StockReserved was recorded by the saga (it carries the saga's
//     command ID for the step), or
//   - a SKU of its lines had a stock stream before its StockReserved
//     (Ordo stocked that SKU then; with --manual-stock nobody adds stock
//     to Ordo), or
//   - ScopeOrdo (ordo verify --stock ordo) says so for every order (a
//     service that never ran with --manual-stock), which also covers
//     orders of SKUs never stocked.
//
// Forging the saga's command ID only makes an order checked, never exempt.

// Scope is which orders' stock Verify holds to the SKU streams (ordo
// verify --stock).
type Scope string

const (
	ScopeAuto Scope = "auto" // decided per order from the events (above)
	ScopeOrdo Scope = "ordo" // every order's stock is Ordo's
)

// stockClaim is an order's StockReserved and what happened to the order
// after it.
type stockClaim struct {
	stream   string
	revision uint64
	orderID  string
	position uint64           // of the StockReserved
	need     map[string]int64 // SKU → units the lines hold
	bySaga   bool
	freedAt  uint64 // position of the OrderCancelled or OrderRefunded that gave its stock up, 0 if none
	shipAt   uint64 // position of OrderShipped, 0 if none
}

// skuFacts is what a SKU's stream says about each order.
type skuFacts struct {
	firstAt uint64 // position of the stream's first event
	orders  map[string]*holding
}

// holding is one order's reservation in one SKU stream.
type holding struct {
	quantity   int64
	reservedAt uint64
	settledAt  uint64 // 0 while open
	committed  bool   // settled by InventoryCommitted (shipped), else released
}

// orderTrack follows an order stream for the cross-stream check.
type orderTrack struct {
	id    string
	lines []domain.Line
	claim *stockClaim
}

// observeOrder records, for an order event the fold accepted, what the
// cross-stream check needs.
func (v *Verifier) observeOrder(t *orderTrack, e Event, ev domain.Event) {
	switch d := ev.Data.(type) {
	case domain.OrderPlaced:
		t.lines = d.Lines
	case domain.StockReserved:
		need := make(map[string]int64, len(t.lines))
		for _, l := range t.lines {
			need[l.SKU] += l.Quantity
		}
		t.claim = &stockClaim{stream: e.Stream, revision: e.Revision, orderID: t.id, position: e.Position, need: need,
			bySaga: ev.Meta.CommandID != "" && ev.Meta.CommandID == commands.SagaStockReservedID(t.id)}
		v.claims = append(v.claims, t.claim)
	case domain.OrderCancelled, domain.OrderRefunded:
		if t.claim != nil && t.claim.freedAt == 0 {
			t.claim.freedAt = e.Position
		}
	case domain.OrderShipped:
		if t.claim != nil {
			t.claim.shipAt = e.Position
		}
	}
}

// observeStock records the reservations a stock event (accepted by the
// fold) makes or settles.
func (v *Verifier) observeStock(f *skuFacts, e Event, ev domain.Event) {
	if f.orders == nil {
		f.firstAt, f.orders = e.Position, map[string]*holding{}
	}
	switch d := ev.Data.(type) {
	case domain.InventoryReserved:
		for _, r := range d.Reservations() {
			f.orders[r.OrderID] = &holding{quantity: r.Quantity, reservedAt: e.Position}
		}
	case domain.InventoryReleased:
		if h := f.orders[d.OrderID]; h != nil && h.settledAt == 0 {
			h.settledAt = e.Position
		}
	case domain.InventoryCommitted:
		if h := f.orders[d.OrderID]; h != nil && h.settledAt == 0 {
			h.settledAt, h.committed = e.Position, true
		}
	}
}

// checkClaims holds every claim whose stock is Ordo's to its SKU streams.
func checkClaims(claims []*stockClaim, skus map[string]*skuFacts, scope Scope) []Violation {
	var out []Violation
	for _, c := range claims {
		if !ordoStock(c, skus, scope) {
			continue
		}
		names := make([]string, 0, len(c.need))
		for sku := range c.need {
			names = append(names, sku)
		}
		sort.Strings(names)
		for _, sku := range names {
			if reason := c.check(sku, skus[sku]); reason != "" {
				out = append(out, Violation{Stream: c.stream, Revision: c.revision, Type: domain.EvtStockReserved, Reason: reason})
			}
		}
	}
	return out
}

// ordoStock decides whether the claim's stock is Ordo's (see above).
func ordoStock(c *stockClaim, skus map[string]*skuFacts, scope Scope) bool {
	if scope == ScopeOrdo || c.bySaga {
		return true
	}
	for sku := range c.need {
		if f := skus[sku]; f != nil && f.firstAt < c.position {
			return true
		}
	}
	return false
}

// check returns why the SKU's stream does not back the claim, or "".
func (c *stockClaim) check(sku string, f *skuFacts) string {
	stream, need := domain.StockStream(sku), c.need[sku]
	var h *holding
	if f != nil {
		h = f.orders[c.orderID]
	}
	switch {
	case h == nil:
		return fmt.Sprintf("reached awaiting_payment (position %d) without a reservation: %s holds none for the order, whose lines need %d",
			c.position, stream, need)
	case h.reservedAt > c.position:
		return fmt.Sprintf("reached awaiting_payment (position %d) before %s reserved its %d units (position %d)", c.position, stream, h.quantity, h.reservedAt)
	case h.quantity != need:
		return fmt.Sprintf("reached awaiting_payment with %d reserved in %s, but its lines need %d", h.quantity, stream, need)
	case h.settledAt != 0 && h.settledAt < c.position:
		return fmt.Sprintf("reached awaiting_payment (position %d) after %s had settled its reservation (position %d)", c.position, stream, h.settledAt)
	case h.settledAt != 0 && h.committed && (c.shipAt == 0 || h.settledAt < c.shipAt):
		return fmt.Sprintf("%s committed the order's reservation (position %d) before the order shipped", stream, h.settledAt)
	case h.settledAt != 0 && !h.committed && (c.freedAt == 0 || h.settledAt < c.freedAt) && (c.shipAt == 0 || h.settledAt < c.shipAt):
		return fmt.Sprintf("%s released the order's reservation (position %d) while the order still counted on it (not cancelled, refunded or shipped before)", stream, h.settledAt)
	}
	return ""
}
