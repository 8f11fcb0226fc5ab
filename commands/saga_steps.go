package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
)

// step is the saga's reaction to one order event; at is where the event
// is, for a timer it starts.
func (s *Saga) step(ctx context.Context, timers *timerSchedule, orderID string, ev domain.Event, at timerOrigin) error {
	s.timerStep(timers, orderID, ev, at)
	switch d := ev.Data.(type) {
	case domain.OrderPlaced:
		if s.opts.ManualStock {
			return nil
		}
		return s.reserve(ctx, orderID, d.Lines, ev.Meta)
	case domain.OrderCancelled, domain.StockRejected:
		return s.settle(ctx, orderID, ev.Meta, func(sku string) domain.StockCommand { return domain.ReleaseStock{SKU: sku, OrderID: orderID} })
	case domain.OrderRefunded:
		// Fully refunded while paid and not shipped, the order is over: its
		// reservation must not outlive it. After a shipment its reservation
		// was committed, and releasing finds nothing.
		return s.settle(ctx, orderID, ev.Meta, func(sku string) domain.StockCommand { return domain.ReleaseStock{SKU: sku, OrderID: orderID} })
	case domain.OrderShipped:
		return s.settle(ctx, orderID, ev.Meta, func(sku string) domain.StockCommand { return domain.CommitStock{SKU: sku, OrderID: orderID} })
	}
	return nil
}

// stepID is the deterministic command ID of a saga step for an order, so a
// repeated step is recognised as a duplicate.
func stepID(orderID, step string) string {
	return uuid.NewSHA1(sagaNamespace, []byte(orderID+"/"+step)).String()
}

var sagaNamespace = uuid.MustParse("5b1d6a57-7a4b-4c8e-9d3e-0b2c7f6e4a10")

// SagaStockReservedID is the command ID of the saga's MarkStockReserved for
// an order: a StockReserved that carries it was recorded by the saga after
// it reserved the order's stock (ordo verify holds such orders to their SKU
// streams).
func SagaStockReservedID(orderID string) string { return stepID(orderID, sagaStockReserved) }

// sagaStockReserved is the step of the saga's MarkStockReserved.
const sagaStockReserved = "stock-reserved"

// reserve reserves every line, all or nothing, and records the outcome on
// the order.
func (s *Saga) reserve(ctx context.Context, orderID string, lines []domain.Line, meta domain.EventMeta) error {
	qty := map[string]int64{}
	for _, l := range lines {
		qty[l.SKU] += l.Quantity
	}
	skus := make([]string, 0, len(qty))
	for sku := range qty {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	results := make([]StockResult, len(skus))
	var wg sync.WaitGroup
	for i, sku := range skus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.stock.Execute(ctx, StockRequest{CommandID: stepID(orderID, "reserve/"+sku), CorrelationID: meta.CorrelationID,
				CausationID: meta.CommandID, Command: domain.ReserveStock{SKU: sku, OrderID: orderID, Quantity: qty[sku]}})
		}()
	}
	wg.Wait()
	var short []string
	for i, r := range results {
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, domain.ErrOutOfStock), errors.Is(r.Err, domain.ErrIllegalTransition), errors.Is(r.Err, domain.ErrReservationConflict):
			// Out of stock, or the reservation was already released by an
			// earlier run of this step that rejected the order, or the order
			// holds another quantity than its lines (reserved by a client
			// before stock reserves were the saga's alone): the order cannot
			// be backed as it is, and releasing gives back what it holds.
			short = append(short, skus[i])
		default:
			return r.Err
		}
	}
	cmdMeta := func(step string) (string, string, string) {
		return stepID(orderID, step), meta.CorrelationID, meta.CommandID
	}
	if len(short) == 0 {
		id, corr, cause := cmdMeta(sagaStockReserved)
		res := s.orders.Execute(ctx, commandRequest(domain.MarkStockReserved{Order: orderID}, id, corr, cause))
		switch {
		case res.Err == nil:
			return nil
		case errors.Is(res.Err, domain.ErrIllegalTransition):
			// Someone else decided first: the order was cancelled while we
			// reserved (give the stock back), or marked reserved already.
			// The refusal was decided on state just read from the stream,
			// which it reports; a cancellation after it releases the stock
			// through its own event.
			state := res.Current
			if state == "" {
				view, err := s.orders.GetOrder(ctx, orderID)
				if err != nil {
					return err
				}
				state = view.State
			}
			if state == domain.StateCancelled {
				return s.releaseAll(ctx, orderID, skus, meta)
			}
			return nil
		default:
			return res.Err
		}
	}
	if decided, err := s.reservationDecided(ctx, orderID); err != nil || decided {
		return err
	}
	if err := s.releaseAll(ctx, orderID, skus, meta); err != nil {
		return err
	}
	id, corr, cause := cmdMeta("stock-rejected")
	res := s.orders.Execute(ctx, commandRequest(domain.MarkStockRejected{Order: orderID, Reason: string(domain.CodeOutOfStock), SKUs: short}, id, corr, cause))
	if res.Err != nil && !errors.Is(res.Err, domain.ErrIllegalTransition) {
		return res.Err
	}
	return nil
}

// reservationDecided reports whether the order's reservation was decided
// and recorded already, so that this is a repeated step (after a restart
// or a takeover the saga goes over events it handled before). Lines come
// back short then because later steps settled them one by one (shipping
// committed some, a refund released some before the saga stopped), and the
// lines still held belong to an order that goes on: releasing them would
// let another order take units that are shipping. The events that settle
// the order settle its other lines too. A placed order is still waiting
// for this step's outcome; a cancelled one is over, and releasing gives
// back only what it holds.
func (s *Saga) reservationDecided(ctx context.Context, orderID string) (bool, error) {
	view, err := s.orders.GetOrder(ctx, orderID)
	if err != nil {
		return false, err
	}
	switch view.State {
	case domain.StatePlaced, domain.StateCancelled:
		return false, nil
	}
	s.log.Info("saga: a repeated reservation step found lines already settled; the order's later steps settle the rest",
		"order", orderID, "state", view.State)
	return true, nil
}

func (s *Saga) releaseAll(ctx context.Context, orderID string, skus []string, meta domain.EventMeta) error {
	for _, sku := range skus {
		r := s.stock.Execute(ctx, StockRequest{CommandID: stepID(orderID, "release/"+sku), CorrelationID: meta.CorrelationID,
			CausationID: meta.CommandID, Command: domain.ReleaseStock{SKU: sku, OrderID: orderID}})
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// settle releases or commits the stock of every line of the order. The
// lines never change once the order is placed, so a cached order serves
// without reading its stream again.
func (s *Saga) settle(ctx context.Context, orderID string, meta domain.EventMeta, cmd func(sku string) domain.StockCommand) error {
	view, err := s.orders.orderView(ctx, orderID, false)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, l := range view.Lines {
		if seen[l.SKU] {
			continue
		}
		seen[l.SKU] = true
		c := cmd(l.SKU)
		r := s.stock.Execute(ctx, StockRequest{CommandID: stepID(orderID, fmt.Sprintf("%T/%s", c, l.SKU)), CorrelationID: meta.CorrelationID,
			CausationID: meta.CommandID, Command: c})
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// commandRequest wraps a domain command for Service.Execute.
func commandRequest(cmd domain.Command, commandID, correlationID, causationID string) Request {
	body, err := json.Marshal(cmd)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", cmd, err)) // plain structs always encode
	}
	return Request{CommandID: commandID, CommandType: cmd.CommandType(), OrderID: cmd.OrderID(),
		CorrelationID: correlationID, CausationID: causationID, Body: body}
}
