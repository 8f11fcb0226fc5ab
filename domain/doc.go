// Package domain is Ordo's order model: the Order aggregate, its lifecycle
// table and finite-state machine, commands, events and typed errors.
//
// An order changes only by folding events (Order.Apply). Order.Decide turns a
// command into new events, or refuses it with an *Error whose Code is stable
// public API. The lifecycle is defined once, in Lifecycle, and enforced
// through github.com/looplab/fsm; the diagrams and `ordo fsm` are rendered
// from the same table.
//
// The package imports only the standard library and looplab/fsm: no
// transport, storage or clock. Time is passed in by the caller.
package domain
