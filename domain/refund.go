package domain

import (
	"sync"

	"github.com/looplab/fsm"
)

// RefundStatus is one refund's state: requested, then completed or rejected.
type RefundStatus string

// Refund states.
const (
	RefundStatusRequested RefundStatus = "requested"
	RefundStatusCompleted RefundStatus = "completed"
	RefundStatusRejected  RefundStatus = "rejected"
)

// refundLifecycle is the refund sub-lifecycle, enforced through its own FSM.
var refundLifecycle = fsm.Events{
	{Name: CmdCompleteRefund, Src: []string{string(RefundStatusRequested)}, Dst: string(RefundStatusCompleted)},
	{Name: CmdRejectRefund, Src: []string{string(RefundStatusRequested)}, Dst: string(RefundStatusRejected)},
}

var refundMachines = sync.Pool{New: func() any {
	return fsm.NewFSM(string(RefundStatusRequested), refundLifecycle, nil)
}}

// refundAllows reports whether a refund in status s accepts command.
func refundAllows(s RefundStatus, command string) bool {
	return can(&refundMachines, string(s), command)
}

// refundSettleable reports whether a refund can still be completed or rejected.
func refundSettleable(s RefundStatus) bool {
	return refundAllows(s, CmdCompleteRefund) || refundAllows(s, CmdRejectRefund)
}
