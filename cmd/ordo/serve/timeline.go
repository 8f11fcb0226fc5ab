package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/domain"
)

// Timeline is the answer of GET /v1/orders/{id}/history: what
// `ordo history --json` prints, event by event with the state it led to.
type Timeline struct {
	OrderID string       `json:"order_id"`
	State   domain.State `json:"state"`
	Events  []audit.Step `json:"events"`
	// Truncated: the order has more than maxTimeline events; the first
	// ones are shown.
	Truncated bool `json:"truncated,omitempty"`
}

// maxTimeline bounds one answer; an order has a handful of events, a
// stream this long is a bug to look at with `ordo history`.
const maxTimeline = 1000

// serveTimeline answers GET /v1/orders/{id}/history from the event store
// itself (not a read model): the order's events, folded through the
// lifecycle as `ordo history` does.
func (s *Service) serveTimeline(w http.ResponseWriter, r *http.Request) {
	id, ok := domain.NormalizeOrderID(r.PathValue("id"))
	if !ok {
		writeFieldError(w, domain.CodeInvalidCommand, "id", fmt.Sprintf("order IDs are UUIDs, got %.64q", r.PathValue("id")))
		return
	}
	if !onlyParams(w, r, "/v1/orders/{id}/history") {
		return
	}
	tl := Timeline{OrderID: id, Events: []audit.Step{}}
	full := func(audit.Step) bool {
		tl.Truncated = len(tl.Events) == maxTimeline
		return tl.Truncated
	}
	order, err := audit.Replay(r.Context(), AuditStore{Store: s.store}, id, full, func(st audit.Step) { tl.Events = append(tl.Events, st) })
	switch {
	case errors.Is(err, commands.ErrStreamNotFound):
		writeFieldError(w, domain.CodeNotFound, "", fmt.Sprintf("order %s has no events in the event store", id))
		return
	case err != nil:
		s.log.Warn("read order history", "order_id", id, "err", err)
		w.Header().Set("Retry-After", "1")
		writeFieldError(w, domain.CodeUnavailable, "", "the event store did not answer; try again")
		return
	}
	tl.State = order.State()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(tl)
}
