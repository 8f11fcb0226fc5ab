package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// StockAPI is the stock service as clients reach it (the NATS stock API,
// the HTTP stock query). Adding and reading stock go straight to the SKU's
// lane; reservations and releases are checked against their order first,
// so that stock only ever backs real orders:
//
//   - while the saga manages stock (no ManualStock), it alone reserves and
//     releases: a client's reserve or release is refused with saga_only, as
//     a client's MarkStockReserved is (a release behind the saga's back
//     would leave an order awaiting payment with nothing reserved);
//   - a reservation needs an order that exists (not_found), that has a line
//     of the SKU, for exactly the order's quantity of it
//     (reservation_conflict), and that will still settle its stock: placed,
//     awaiting payment or paid (illegal_transition otherwise). The saga
//     releases or commits the stock of every line when the order is
//     cancelled, refunded or shipped, so such a reservation never outlives
//     its order. If the order moved on while the reservation was being made,
//     the reservation is released again and refused;
//   - a release is refused while the order awaits payment or is paid: it
//     counts on its stock (cancel the order instead). A release for an
//     order that does not exist is allowed: it only gives stock back.
type StockAPI struct {
	stock  *StockService
	orders *Service
	manual bool
}

// StockAPIOptions tune a StockAPI.
type StockAPIOptions struct {
	// ManualStock: another system decides the orders' stock and sends
	// MarkStockReserved / MarkStockRejected; clients may then reserve and
	// release through the API themselves. Otherwise the saga does both.
	ManualStock bool
}

// NewStockAPI returns the stock API over the stock and order services.
func NewStockAPI(stock *StockService, orders *Service, opts StockAPIOptions) *StockAPI {
	return &StockAPI{stock: stock, orders: orders, manual: opts.ManualStock}
}

// stockAPITimeout bounds the order reads and the stock command of one
// reservation or release.
const stockAPITimeout = 30 * time.Second

// Submit queues one client stock command; done gets its result exactly
// once, possibly before Submit returns. Adding stock costs no goroutine;
// a reservation or release runs on one of its own, since it reads the
// order. Errors (in the result): those of StockService.Submit, and saga_only,
// not_found, reservation_conflict, illegal_transition as described on
// StockAPI.
func (a *StockAPI) Submit(req StockRequest, done func(StockResult)) {
	fail := func(err error) { done(StockResult{CommandID: req.CommandID, Err: err}) }
	if req.Command == nil {
		fail(&domain.Error{Code: domain.CodeInvalidCommand, Message: "no stock command"})
		return
	}
	if err := req.Command.Validate(); err != nil {
		fail(err)
		return
	}
	switch req.Command.(type) {
	case domain.AddStock:
		a.stock.Submit(req, done)
	case domain.ReserveStock, domain.ReleaseStock:
		if !a.manual {
			fail(sagaOnly(req.Command))
			return
		}
		go func() { done(a.checked(req)) }()
	default:
		fail(sagaOnly(req.Command))
	}
}

func sagaOnly(cmd domain.StockCommand) error {
	return &domain.Error{Code: domain.CodeSagaOnly, Message: fmt.Sprintf(
		"%s of %s is the order saga's to do: it reserves every order's stock when the order is placed and releases or commits it when the order is cancelled, refunded or shipped (a service run with --manual-stock lets clients reserve and release)",
		stockOp(cmd), cmd.StockSKU())}
}

func stockOp(cmd domain.StockCommand) string {
	switch cmd.(type) {
	case domain.ReserveStock:
		return "reserving stock"
	case domain.ReleaseStock:
		return "releasing stock"
	case domain.CommitStock:
		return "committing stock"
	}
	return fmt.Sprintf("%T", cmd)
}

// checked runs a reservation or a release after checking it against its order.
func (a *StockAPI) checked(req StockRequest) StockResult {
	ctx, cancel := context.WithTimeout(context.Background(), stockAPITimeout)
	defer cancel()
	switch c := req.Command.(type) {
	case domain.ReserveStock:
		return a.reserve(ctx, req, c)
	case domain.ReleaseStock:
		return a.release(ctx, req, c)
	}
	return StockResult{CommandID: req.CommandID, Err: sagaOnly(req.Command)}
}

func (a *StockAPI) reserve(ctx context.Context, req StockRequest, c domain.ReserveStock) StockResult {
	failed := func(err error) StockResult { return StockResult{CommandID: req.CommandID, Err: err} }
	// The lines never change once an order is placed, and a stale state is
	// caught by the check after the reservation: a cached order serves.
	view, err := a.orders.orderView(ctx, c.OrderID, false)
	if err != nil {
		return failed(err)
	}
	if err := reservationFits(view, c); err != nil {
		return failed(err)
	}
	if err := settlesStock(view, "reserved"); err != nil {
		return failed(err)
	}
	res := a.stock.Execute(ctx, req)
	if res.Err != nil || len(res.Events) == 0 {
		return res // refused, or held already: nothing new can outlive the order
	}
	// The order may have been cancelled (or shipped) after it was read and
	// before the reservation was durable, and the saga may have settled its
	// stock before the reservation existed: read it again now. (One read of
	// the order's stream per new reservation, the price of a check that
	// holds across processes.)
	after, err := a.orders.orderView(ctx, c.OrderID, true)
	if err != nil {
		return failed(fmt.Errorf("read order %s after reserving %s for it (resend with the same command_id): %w", c.OrderID, c.SKU, err))
	}
	if err := settlesStock(after, "reserved"); err != nil {
		rel := a.stock.Execute(ctx, StockRequest{CommandID: stepID(c.OrderID, "api-release/"+c.SKU), CorrelationID: req.CorrelationID,
			CausationID: req.CommandID, Command: domain.ReleaseStock{SKU: c.SKU, OrderID: c.OrderID}})
		if rel.Err != nil {
			return failed(fmt.Errorf("release %s for order %s, which is %s (resend with the same command_id): %w", c.SKU, c.OrderID, after.State, rel.Err))
		}
		return failed(err)
	}
	return res
}

// reservationFits checks a reservation against the order's lines: the
// saga commits and releases by line, so a SKU the order does not have
// would never be settled, and the order needs exactly its quantity.
func reservationFits(view domain.OrderView, c domain.ReserveStock) error {
	var need int64
	for _, l := range view.Lines {
		if l.SKU == c.SKU {
			need += l.Quantity
		}
	}
	switch {
	case need == 0:
		return &domain.Error{Code: domain.CodeReservationConflict, Field: "sku", Message: fmt.Sprintf(
			"order %s has no line of %s: stock is reserved only for an order's own lines", c.OrderID, c.SKU)}
	case need != c.Quantity:
		return &domain.Error{Code: domain.CodeReservationConflict, Field: "quantity", Message: fmt.Sprintf(
			"order %s has %d of %s in its lines; a reservation is for exactly that, not %d", c.OrderID, need, c.SKU, c.Quantity)}
	}
	return nil
}

// settlesStock refuses an order whose stock the saga will no longer settle:
// one cancelled, shipped or over.
func settlesStock(view domain.OrderView, what string) error {
	switch view.State {
	case domain.StatePlaced, domain.StateAwaitingPayment, domain.StatePaid:
		return nil
	}
	return &domain.Error{Code: domain.CodeIllegalTransition, State: view.State, Message: fmt.Sprintf(
		"order %s is %s: its stock was settled, and nothing can be %s for it any more", view.OrderID, view.State, what)}
}

func (a *StockAPI) release(ctx context.Context, req StockRequest, c domain.ReleaseStock) StockResult {
	view, err := a.orders.orderView(ctx, c.OrderID, true)
	switch {
	case domain.CodeOf(err) == domain.CodeNotFound:
		// No order counts on it: giving stock back is harmless.
	case err != nil:
		return StockResult{CommandID: req.CommandID, Err: err}
	case view.State == domain.StateAwaitingPayment, view.State == domain.StatePaid:
		return StockResult{CommandID: req.CommandID, Err: &domain.Error{Code: domain.CodeIllegalTransition, State: view.State, Message: fmt.Sprintf(
			"order %s is %s and counts on its stock of %s: cancel the order, and its stock is released", c.OrderID, view.State, c.SKU)}}
	}
	return a.stock.Execute(ctx, req)
}

// Get returns a SKU's stock (see StockService.Get). A SKU that never had
// stock is not_found: its stream holds no event.
func (a *StockAPI) Get(ctx context.Context, sku string) (domain.StockView, error) {
	v, err := a.stock.Get(ctx, sku)
	if err == nil && v.Revision < 0 {
		return domain.StockView{}, &domain.Error{Code: domain.CodeNotFound, Message: fmt.Sprintf(
			"SKU %s has no stock: none was ever added (add some with `ordo stock add %s QTY`)", sku, sku)}
	}
	return v, err
}
