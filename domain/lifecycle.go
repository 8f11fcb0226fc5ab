package domain

import (
	"sync"

	"github.com/looplab/fsm"
)

// State is an order's lifecycle state. The names are public API.
type State string

// The lifecycle states.
const (
	StateNone            State = "" // no events yet
	StatePlaced          State = "placed"
	StateAwaitingPayment State = "awaiting_payment"
	StatePaid            State = "paid"
	StateShipped         State = "shipped"
	StateDelivered       State = "delivered"
	StateCompleted       State = "completed"
	StateCancelled       State = "cancelled"
	StateRefunded        State = "refunded"
)

// States lists every state of an existing order, in lifecycle order.
func States() []State {
	return []State{StatePlaced, StateAwaitingPayment, StatePaid, StateShipped, StateDelivered,
		StateCompleted, StateCancelled, StateRefunded}
}

// Transition is one row of the lifecycle: in any of From, Command yields
// Events and the order moves To (Same means it stays where it was).
type Transition struct {
	From    []State
	Command string   // a command type, or an automatic step in parentheses
	Events  []string // event types, in order; optional ones are marked in Note
	To      State
	Same    bool   // the order stays in its state
	Note    string // the condition or side effect, for humans
	auto    bool   // taken by the domain itself, not requested by a command
	eventID string // FSM event name
}

// Command types (stable wire names).
const (
	CmdPlaceOrder        = "PlaceOrder"
	CmdMarkStockReserved = "MarkStockReserved"
	CmdMarkStockRejected = "MarkStockRejected"
	CmdConfirmPayment    = "ConfirmPayment"
	CmdFailPayment       = "FailPayment"
	CmdCancelOrder       = "CancelOrder"
	CmdShipOrder         = "ShipOrder"
	CmdConfirmDelivery   = "ConfirmDelivery"
	CmdCompleteOrder     = "CompleteOrder"
	CmdRequestRefund     = "RequestRefund"
	CmdCompleteRefund    = "CompleteRefund"
	CmdRejectRefund      = "RejectRefund"
	CmdExpirePayment     = "ExpirePayment"
)

// autoRefunded is the FSM event of the automatic move to refunded.
const autoRefunded = "(fully refunded)"

// moneyStates are the states in which money received can still be settled
// through refunds.
var moneyStates = []State{StatePaid, StateShipped, StateDelivered, StateCompleted, StateCancelled, StateRefunded}

// lifecycle is THE transition table: the FSM, `ordo fsm`, the README diagram
// and the tests all derive from it.
var lifecycle = []Transition{
	{From: []State{StateNone}, Command: CmdPlaceOrder, Events: []string{EvtOrderPlaced}, To: StatePlaced},
	{From: []State{StatePlaced}, Command: CmdMarkStockReserved, Events: []string{EvtStockReserved}, To: StateAwaitingPayment},
	{From: []State{StatePlaced}, Command: CmdMarkStockRejected, Events: []string{EvtStockRejected}, To: StateCancelled},
	{From: []State{StateAwaitingPayment}, Command: CmdConfirmPayment, Events: []string{EvtPaymentSucceeded}, To: StatePaid,
		Note: "amount equals the order total; otherwise PaymentAmountMismatched + RefundRequested, state unchanged, error amount_mismatch"},
	{From: []State{StatePaid, StateShipped, StateDelivered, StateCompleted, StateRefunded}, Command: CmdConfirmPayment,
		Events: []string{EvtPaymentSucceeded, EvtRefundRequested}, Same: true,
		Note: "a second payment: recorded and refunded automatically"},
	{From: []State{StateCancelled}, Command: CmdConfirmPayment, Events: []string{EvtPaymentSucceeded, EvtRefundRequested}, Same: true,
		Note: "late payment on a cancelled order: recorded and refunded automatically"},
	{From: []State{StateAwaitingPayment}, Command: CmdFailPayment, Events: []string{EvtPaymentFailed}, Same: true,
		Note: "another payment may follow"},
	{From: []State{StatePlaced, StateAwaitingPayment}, Command: CmdCancelOrder, Events: []string{EvtOrderCancelled}, To: StateCancelled},
	{From: []State{StateAwaitingPayment}, Command: CmdExpirePayment, Events: []string{EvtOrderCancelled}, To: StateCancelled,
		Note: "the payment timeout fired; in any other state it changes nothing"},
	{From: []State{StatePaid}, Command: CmdCancelOrder, Events: []string{EvtOrderCancelled, EvtRefundRequested}, To: StateCancelled,
		Note: "a refund of the money received is opened"},
	{From: []State{StatePaid}, Command: CmdShipOrder, Events: []string{EvtOrderShipped}, To: StateShipped},
	{From: []State{StateShipped}, Command: CmdConfirmDelivery, Events: []string{EvtOrderDelivered}, To: StateDelivered},
	{From: []State{StateDelivered}, Command: CmdCompleteOrder, Events: []string{EvtOrderCompleted}, To: StateCompleted},
	{From: moneyStates, Command: CmdRequestRefund, Events: []string{EvtRefundRequested}, Same: true,
		Note: "refunds never exceed the money received"},
	{From: append([]State{StateAwaitingPayment}, moneyStates...), Command: CmdCompleteRefund, Events: []string{EvtRefundCompleted}, Same: true,
		Note: "the refund must be requested"},
	{From: append([]State{StateAwaitingPayment}, moneyStates...), Command: CmdRejectRefund, Events: []string{EvtRefundRejected}, Same: true,
		Note: "the refund must be requested"},
	{From: []State{StatePaid, StateShipped, StateDelivered, StateCompleted}, Command: autoRefunded, Events: []string{EvtOrderRefunded},
		To: StateRefunded, auto: true, Note: "after CompleteRefund, when every unit of money received has been refunded"},
}

// Lifecycle returns the transition table.
func Lifecycle() []Transition {
	out := make([]Transition, len(lifecycle))
	copy(out, lifecycle)
	return out
}

// fsmEvents builds the looplab/fsm description of the table. A row with
// Same becomes one self-loop per source state, since an FSM event has one
// destination per source.
func fsmEvents() fsm.Events {
	var evs fsm.Events
	for _, t := range lifecycle {
		for _, from := range t.From {
			to := t.To
			if t.Same {
				to = from
			}
			evs = append(evs, fsm.EventDesc{Name: t.Command, Src: []string{fsmState(from)}, Dst: fsmState(to)})
		}
	}
	return evs
}

// fsmState names StateNone for the FSM, which needs a non-empty state.
func fsmState(s State) string {
	if s == StateNone {
		return "none"
	}
	return string(s)
}

// machines pools FSMs: building one costs far more than a decision, and an
// FSM carries its current state, so it cannot be shared while in use.
var machines = sync.Pool{New: func() any { return fsm.NewFSM("none", fsmEvents(), nil) }}

// allowed reports whether the lifecycle lets command run in state s. It is
// the only gate for commands: decide functions are reached only through it.
func allowed(s State, command string) bool {
	return can(&machines, fsmState(s), command)
}

// can borrows an FSM from pool, puts it in state and asks whether event may
// fire there. Only Can is used: decisions never run FSM callbacks.
func can(pool *sync.Pool, state, event string) bool {
	m := pool.Get().(*fsm.FSM)
	m.SetState(state)
	ok := m.Can(event)
	pool.Put(m)
	return ok
}

// target is where command leads from s per the table, and whether the table
// has such a row.
func target(s State, command string) (State, bool) {
	for _, t := range lifecycle {
		for _, from := range t.From {
			if from == s && t.Command == command {
				if t.Same {
					return s, true
				}
				return t.To, true
			}
		}
	}
	return s, false
}
