package domain

import "fmt"

// StockBatch decides stock commands one after another against a Stock and
// gathers the events to append for all of them. Each decision is folded at
// once, so the next command sees it. Consecutive reservations share one
// InventoryReserved (its Orders form; a run of one keeps the one-order
// form), so a lane that decides a hundred reservations appends one event.
type StockBatch struct {
	stock  *Stock
	events []Event
	groups []reservedGroup
	open   bool // the last event is the last group, and takes more reservations
}

// reservedGroup is a run of reservations that becomes one event.
type reservedGroup struct {
	event  int // index in StockBatch.events
	orders []Reservation
}

// NewBatch starts a batch on s. The stock changes with every decision: if
// the batch's events are not appended, s is ahead of its stream and must be
// loaded again.
func (s *Stock) NewBatch() *StockBatch { return &StockBatch{stock: s} }

// Decide decides cmd, folds what it decided and records the event under
// meta. It returns the type of the event that records the command, "" if
// it was already done, or the refusal (see Stock.Decide).
func (b *StockBatch) Decide(cmd StockCommand, meta EventMeta) (string, error) {
	decided, err := b.stock.Decide(cmd)
	if err != nil || len(decided) == 0 {
		return "", err
	}
	if len(decided) > 1 {
		return "", fmt.Errorf("stock %s: %T decided %d events, a batch takes one per command (a bug)", b.stock.sku, cmd, len(decided))
	}
	d := decided[0]
	r, reserved := d.(InventoryReserved)
	if reserved && b.open {
		// Folded into the open group's event: the stream revision does not move.
		if err := b.stock.fold(r); err != nil {
			return "", fmt.Errorf("decided an event the stock refuses (a bug): %w", err)
		}
		g := &b.groups[len(b.groups)-1]
		g.orders = append(g.orders, Reservation{OrderID: r.OrderID, Quantity: r.Quantity,
			CommandID: meta.CommandID, CorrelationID: meta.CorrelationID, CausationID: meta.CausationID})
		return EvtInventoryReserved, nil
	}
	if err := b.stock.Apply(d); err != nil {
		return "", fmt.Errorf("decided an event the stock refuses (a bug): %w", err)
	}
	b.open = reserved
	if reserved {
		b.groups = append(b.groups, reservedGroup{event: len(b.events), orders: []Reservation{{OrderID: r.OrderID, Quantity: r.Quantity,
			CommandID: meta.CommandID, CorrelationID: meta.CorrelationID, CausationID: meta.CausationID}}})
	}
	b.events = append(b.events, Event{Type: d.EventType(), Version: 1, Data: d, Meta: meta})
	return d.EventType(), nil
}

// Events returns the events to append, in order. A group of several
// reservations carries the metadata of its first; each of its orders
// carries its own command, correlation and causation IDs.
func (b *StockBatch) Events() []Event {
	for _, g := range b.groups {
		if len(g.orders) > 1 {
			b.events[g.event].Data = InventoryReserved{SKU: b.stock.sku, Orders: g.orders}
		}
	}
	return b.events
}
