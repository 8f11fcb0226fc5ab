package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
)

// Step is one event of an order's history with the state it led to.
type Step struct {
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
	// Problem says why the event could not be decoded or folded; the
	// order's state is then the one before it.
	Problem string `json:"problem,omitempty"`
}

// Timeline returns every event of the order's stream with the state after
// it; see Replay for the ID and the errors.
func Timeline(ctx context.Context, r StreamReader, orderID string) ([]Step, error) {
	var steps []Step
	if _, err := Replay(ctx, r, orderID, nil, func(s Step) { steps = append(steps, s) }); err != nil {
		return nil, err
	}
	return steps, nil
}

// Replay folds the order's stream, calling each (if set) for every event
// with the state after it, until stop (if set) says to stop before an
// event. It returns the order as folded. The ID may be a UUID in any case:
// it names the order of its lower-case form. An event that cannot be
// decoded or that the lifecycle refuses is reported in its Step's Problem
// and left out of the fold; an order with no events is an error that says
// so.
func Replay(ctx context.Context, r StreamReader, orderID string, stop func(Step) bool, each func(Step)) (*domain.Order, error) {
	orderID, _ = domain.NormalizeOrderID(orderID)
	codec := jsonwire.NewCodec()
	order := domain.NewOrder(orderID)
	errStop := errors.New("stop")
	err := r.ReadStream(ctx, commands.StreamName(orderID), 0, func(e Event) error {
		s := Step{Revision: e.Revision, Position: e.Position, Time: e.Created, Type: e.Type, Data: json.RawMessage(e.Data)}
		if !json.Valid(e.Data) {
			s.Data = json.RawMessage(strconv.Quote(string(e.Data)))
		}
		ev, err := codec.Decode(e.Type, e.Data, e.Metadata)
		if err != nil {
			s.Problem = "undecodable: " + err.Error()
		} else {
			s.Version, s.CommandID, s.CorrelationID, s.CausationID = ev.Version, ev.Meta.CommandID, ev.Meta.CorrelationID, ev.Meta.CausationID
			if !ev.Meta.OccurredAt.IsZero() {
				s.Time = ev.Meta.OccurredAt
			}
		}
		if stop != nil && stop(s) {
			return errStop
		}
		if err == nil {
			if err := order.Apply(ev); err != nil {
				s.Problem = "illegal: " + err.Error()
			}
		}
		s.State = order.State()
		if each != nil {
			each(s)
		}
		return nil
	})
	if errors.Is(err, commands.ErrStreamNotFound) {
		return nil, noEventsError{orderID}
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return order, nil
}

// noEventsError: the order has no stream. It is commands.ErrStreamNotFound
// (errors.Is) with a message that says what to check.
type noEventsError struct{ orderID string }

func (e noEventsError) Error() string {
	return fmt.Sprintf("order %s has no events in the event store (stream %s): check the ID", e.orderID, commands.StreamName(e.orderID))
}

func (e noEventsError) Unwrap() error { return commands.ErrStreamNotFound }
