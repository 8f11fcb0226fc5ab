package domain

import (
	"fmt"
	"strings"
)

// Stock events, on the stream sku-<code> of each SKU. They are named
// Inventory* so they never clash with the order's own StockReserved and
// StockRejected, which record the outcome on the order.
const (
	EvtInventoryAdded     = "InventoryAdded"
	EvtInventoryReserved  = "InventoryReserved"
	EvtInventoryReleased  = "InventoryReleased"
	EvtInventoryCommitted = "InventoryCommitted"
)

// InventoryAdded: units arrived and can be sold.
type InventoryAdded struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// InventoryReserved: units are held for orders until they ship (commit)
// or are cancelled (release). It has two forms. One order: OrderID and
// Quantity, with the command in the event's metadata (the only form until
// stock lanes batched reservations, and still the form of a reservation
// decided alone). Several orders decided together: Orders, each with its
// own command, and OrderID and Quantity empty. A hot SKU's lane decides
// dozens of reservations per append; one event for all of them costs the
// event store one record instead of dozens. Either form folds atomically.
type InventoryReserved struct {
	SKU string `json:"sku"`
	// omitempty only hides them in the Orders form: a one-order event
	// always has both, so it is written exactly as before.
	OrderID  string        `json:"order_id,omitempty"`
	Quantity int64         `json:"quantity,omitempty"`
	Orders   []Reservation `json:"orders,omitempty"`
}

// Reservation is one order's part of an InventoryReserved in its Orders
// form, with the IDs the event metadata holds in the one-order form.
type Reservation struct {
	OrderID       string `json:"order_id"`
	Quantity      int64  `json:"quantity"`
	CommandID     string `json:"command_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
}

// Reservations returns the orders the event reserves for, in either form.
func (e InventoryReserved) Reservations() []Reservation {
	if len(e.Orders) > 0 {
		return e.Orders
	}
	return []Reservation{{OrderID: e.OrderID, Quantity: e.Quantity}}
}

// InventoryReleased: an order's reservation was given back.
type InventoryReleased struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"order_id"`
	Quantity int64  `json:"quantity"`
}

// InventoryCommitted: an order's reserved units left the warehouse.
type InventoryCommitted struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"order_id"`
	Quantity int64  `json:"quantity"`
}

func (InventoryAdded) EventType() string     { return EvtInventoryAdded }
func (InventoryReserved) EventType() string  { return EvtInventoryReserved }
func (InventoryReleased) EventType() string  { return EvtInventoryReleased }
func (InventoryCommitted) EventType() string { return EvtInventoryCommitted }

// StockStreamPrefix starts the stream name of every SKU.
const StockStreamPrefix = "sku-"

// Stock commands. They are sent by operators (AddStock) and by the order
// saga (the rest); each names its SKU.
type (
	// AddStock adds units to a SKU's stock on hand.
	AddStock struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	}
	// ReserveStock holds units for an order. Reserving the same quantity
	// again for the order changes nothing: a reservation is never applied
	// twice; another quantity is refused (reservation_conflict).
	ReserveStock struct {
		SKU      string `json:"sku"`
		OrderID  string `json:"order_id"`
		Quantity int64  `json:"quantity"`
	}
	// ReleaseStock gives an order's reservation back, if it holds one.
	ReleaseStock struct {
		SKU     string `json:"sku"`
		OrderID string `json:"order_id"`
	}
	// CommitStock takes an order's reserved units off the stock on hand
	// when it ships.
	CommitStock struct {
		SKU     string `json:"sku"`
		OrderID string `json:"order_id"`
	}
)

// StockCommand is one of AddStock, ReserveStock, ReleaseStock, CommitStock.
type StockCommand interface {
	StockSKU() string
	Validate() error
}

func (c AddStock) StockSKU() string     { return c.SKU }
func (c ReserveStock) StockSKU() string { return c.SKU }
func (c ReleaseStock) StockSKU() string { return c.SKU }
func (c CommitStock) StockSKU() string  { return c.SKU }

func (c AddStock) Validate() error {
	if err := checkID("sku", c.SKU); err != nil {
		return err
	}
	if c.Quantity <= 0 || c.Quantity > maxStockAdd {
		return invalid("quantity", "must be between 1 and %d, got %d", maxStockAdd, c.Quantity)
	}
	return nil
}

func (c ReserveStock) Validate() error {
	if err := checkID("sku", c.SKU); err != nil {
		return err
	}
	if err := checkOrderID(c.OrderID); err != nil {
		return err
	}
	if c.Quantity <= 0 || c.Quantity > maxQuantity {
		return invalid("quantity", "must be between 1 and %d, got %d", maxQuantity, c.Quantity)
	}
	return nil
}

func (c ReleaseStock) Validate() error { return checkSKUAndOrder(c.SKU, c.OrderID) }
func (c CommitStock) Validate() error  { return checkSKUAndOrder(c.SKU, c.OrderID) }

func checkSKUAndOrder(sku, orderID string) error {
	if err := checkID("sku", sku); err != nil {
		return err
	}
	return checkOrderID(orderID)
}

// maxStockAdd bounds one delivery, so sums of int64 never overflow.
const maxStockAdd = 1_000_000_000

// Stock is the stock aggregate of one SKU. Available (on hand minus
// reserved) never goes below zero: Decide refuses a reservation that would
// take it there, and Apply refuses such an event in a replayed history.
type Stock struct {
	sku      string
	revision int64
	onHand   int64
	reserved int64
	open     map[string]int64    // order → units reserved and not yet released or committed
	settled  map[string]struct{} // orders whose reservation was released or committed
}

// NewStock returns the stock of sku with no events.
func NewStock(sku string) *Stock {
	return &Stock{sku: sku, revision: -1, open: map[string]int64{}, settled: map[string]struct{}{}}
}

// SKU is the stock's SKU code.
func (s *Stock) SKU() string { return s.sku }

// Revision is the stream revision of the last folded event, -1 when none.
func (s *Stock) Revision() int64 { return s.revision }

// OnHand is the units held: added minus committed (shipped).
func (s *Stock) OnHand() int64 { return s.onHand }

// Reserved is the units held for orders that have not shipped.
func (s *Stock) Reserved() int64 { return s.reserved }

// Available is what can still be reserved.
func (s *Stock) Available() int64 { return s.onHand - s.reserved }

// Reservation is the units reserved for orderID and not yet released or
// committed (0, false if none).
func (s *Stock) Reservation(orderID string) (int64, bool) {
	q, ok := s.open[orderID]
	return q, ok
}

// StockView is a JSON snapshot of a SKU's stock.
type StockView struct {
	SKU       string `json:"sku"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Revision  int64  `json:"revision"`
}

// View returns a snapshot of the stock.
func (s *Stock) View() StockView {
	return StockView{SKU: s.sku, OnHand: s.onHand, Reserved: s.reserved, Available: s.Available(), Revision: s.revision}
}

// Decide turns a stock command into events without changing the stock;
// the caller appends them and folds them with Apply. No events and a nil
// error mean the command was already done (a repeated reservation, a
// release of nothing). Errors: invalid_command, out_of_stock,
// reservation_conflict (the order holds another quantity), illegal_transition
// (the order's reservation was already settled).
func (s *Stock) Decide(cmd StockCommand) ([]EventData, error) {
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	if cmd.StockSKU() != s.sku {
		return nil, invalid("sku", "the command is for SKU %q, this stock is %q", cmd.StockSKU(), s.sku)
	}
	switch c := cmd.(type) {
	case AddStock:
		return []EventData{InventoryAdded{SKU: s.sku, Quantity: c.Quantity}}, nil
	case ReserveStock:
		if held, ok := s.open[c.OrderID]; ok {
			if held != c.Quantity {
				return nil, &Error{Code: CodeReservationConflict, Field: "quantity", Message: fmt.Sprintf(
					"order %s already holds %d of %s; a reservation is never changed: this one asks for %d", c.OrderID, held, s.sku, c.Quantity)}
			}
			return nil, nil
		}
		if _, ok := s.settled[c.OrderID]; ok {
			return nil, &Error{Code: CodeIllegalTransition, Message: fmt.Sprintf("order %s's reservation of %s was already released or committed", c.OrderID, s.sku)}
		}
		if c.Quantity > s.Available() {
			return nil, &Error{Code: CodeOutOfStock, Field: "quantity",
				Message: fmt.Sprintf("%s has %d available, the order asks for %d", s.sku, max(s.Available(), 0), c.Quantity)}
		}
		return []EventData{InventoryReserved{SKU: s.sku, OrderID: c.OrderID, Quantity: c.Quantity}}, nil
	case ReleaseStock:
		if q, ok := s.open[c.OrderID]; ok {
			return []EventData{InventoryReleased{SKU: s.sku, OrderID: c.OrderID, Quantity: q}}, nil
		}
		return nil, nil
	case CommitStock:
		if q, ok := s.open[c.OrderID]; ok {
			return []EventData{InventoryCommitted{SKU: s.sku, OrderID: c.OrderID, Quantity: q}}, nil
		}
		return nil, nil
	}
	return nil, &Error{Code: CodeUnknownCommand, Message: fmt.Sprintf("not a stock command: %T", cmd)}
}

// Apply folds one event into the stock, refusing one that breaks an
// invariant, so a replay also verifies history.
func (s *Stock) Apply(d EventData) error {
	if err := s.fold(d); err != nil {
		return fmt.Errorf("apply %s to %s: %w", d.EventType(), s.sku, err)
	}
	s.revision++
	return nil
}

func (s *Stock) fold(d EventData) error {
	switch e := d.(type) {
	case InventoryAdded:
		if e.Quantity <= 0 {
			return fmt.Errorf("quantity %d is not positive", e.Quantity)
		}
		s.onHand += e.Quantity
	case InventoryReserved:
		if len(e.Orders) == 0 {
			return s.reserve(e.OrderID, e.Quantity)
		}
		if e.OrderID != "" || e.Quantity != 0 {
			return fmt.Errorf("the event names order %q both alone and among %d orders", e.OrderID, len(e.Orders))
		}
		for i, r := range e.Orders {
			if err := s.reserve(r.OrderID, r.Quantity); err != nil {
				for _, done := range e.Orders[:i] { // all or nothing
					delete(s.open, done.OrderID)
					s.reserved -= done.Quantity
				}
				return fmt.Errorf("orders[%d]: %w", i, err)
			}
		}
	case InventoryReleased, InventoryCommitted:
		order, q := settledOrder(e)
		held, ok := s.open[order]
		if !ok || held != q {
			return fmt.Errorf("order %s holds no reservation of %d", order, q)
		}
		delete(s.open, order)
		s.settled[order] = struct{}{}
		s.reserved -= q
		if _, shipped := e.(InventoryCommitted); shipped {
			s.onHand -= q
		}
	default:
		return fmt.Errorf("not a stock event")
	}
	return nil
}

// reserve folds one order's reservation, refusing a second one for the
// order and any that would oversell.
func (s *Stock) reserve(order string, q int64) error {
	if _, ok := s.open[order]; ok {
		return fmt.Errorf("order %s already holds a reservation", order)
	}
	if _, ok := s.settled[order]; ok {
		return fmt.Errorf("order %s's reservation was already settled", order)
	}
	if q <= 0 || q > s.Available() {
		return fmt.Errorf("reserving %d of %d available would oversell", q, s.Available())
	}
	s.open[order] = q
	s.reserved += q
	return nil
}

func settledOrder(d EventData) (string, int64) {
	switch e := d.(type) {
	case InventoryReleased:
		return e.OrderID, e.Quantity
	case InventoryCommitted:
		return e.OrderID, e.Quantity
	}
	return "", 0
}

// StockStream is the event stream of a SKU.
func StockStream(sku string) string { return StockStreamPrefix + sku }

// SKUOfStream returns the SKU of a stock stream name.
func SKUOfStream(stream string) (string, bool) {
	return strings.CutPrefix(stream, StockStreamPrefix)
}
