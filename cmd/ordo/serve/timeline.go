package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/domain/fastjson"
	"github.com/ordo-dev/ordo/eventstore"
)

// TimelineStep is one event of an order's timeline with the lifecycle
// state it led to: what `ordo history --json` prints for it.
type TimelineStep struct {
	Revision      uint64          `json:"revision"`
	Position      uint64          `json:"position"`
	Time          time.Time       `json:"time"`
	Type          string          `json:"type"`
	Version       int             `json:"version,omitempty"`
	Data          json.RawMessage `json:"data"`
	CommandID     string          `json:"command_id,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	State         domain.State    `json:"state"`
	// Problem says why the event could not be decoded or folded; State is
	// then the one before it.
	Problem string `json:"problem,omitempty"`
}

// Timeline is the answer of GET /v1/orders/{id}/history.
type Timeline struct {
	OrderID string         `json:"order_id"`
	State   domain.State   `json:"state"`
	Events  []TimelineStep `json:"events"`
	// Truncated: the order has more than maxTimeline events; the first
	// ones are shown.
	Truncated bool `json:"truncated,omitempty"`
}

// maxTimeline bounds one answer; an order has a handful of events, a
// stream this long is a bug to look at with `ordo history`.
const maxTimeline = 1000

var errTimelineFull = errors.New("timeline full")

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
	tl := Timeline{OrderID: id, Events: []TimelineStep{}}
	codec := fastjson.NewCodec()
	order := domain.NewOrder(id)
	err := s.store.ReadStream(r.Context(), commands.StreamName(id), 0, func(re eventstore.RecordedEvent) error {
		if len(tl.Events) == maxTimeline {
			tl.Truncated = true
			return errTimelineFull
		}
		tl.Events = append(tl.Events, foldStep(codec, order, re))
		return nil
	})
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		writeFieldError(w, domain.CodeNotFound, "", fmt.Sprintf("order %s has no events in the event store", id))
		return
	case err != nil && !errors.Is(err, errTimelineFull):
		s.log.Warn("read order history", "order_id", id, "err", err)
		w.Header().Set("Retry-After", "1")
		writeFieldError(w, domain.CodeUnavailable, "", "the event store did not answer; try again")
		return
	}
	tl.State = order.State()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(tl)
}

// foldStep decodes one stored event and applies it to order.
func foldStep(codec *domain.Codec, order *domain.Order, re eventstore.RecordedEvent) TimelineStep {
	st := TimelineStep{Revision: re.Revision, Position: re.Position, Time: re.Created, Type: re.Type, Data: json.RawMessage(re.Data)}
	if !json.Valid(re.Data) {
		st.Data = json.RawMessage(strconv.Quote(string(re.Data)))
	}
	ev, err := codec.Decode(re.Type, re.Data, re.Metadata)
	if err != nil {
		st.Problem = "undecodable: " + err.Error()
	} else {
		st.Version, st.CommandID, st.CorrelationID, st.CausationID = ev.Version, ev.Meta.CommandID, ev.Meta.CorrelationID, ev.Meta.CausationID
		if !ev.Meta.OccurredAt.IsZero() {
			st.Time = ev.Meta.OccurredAt
		}
		if err := order.Apply(ev); err != nil {
			st.Problem = "illegal: " + err.Error()
		}
	}
	st.State = order.State()
	return st
}
