package nats

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/domain"
)

// OrderReader loads an order as its aggregate sees it.
type OrderReader interface {
	GetOrder(ctx context.Context, orderID string) (domain.OrderView, error)
}

// ServeOrderQueries answers requests on ordo.query.order.<id> with
// {"order": …} or {"error": {"code", "message"}}. Several processes share
// the load through a queue group.
func ServeOrderQueries(nc *natsgo.Conn, r OrderReader, log *slog.Logger) (*natsgo.Subscription, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return nc.QueueSubscribe(SubjectOrderQuery+"*", "ordo-queries", func(m *natsgo.Msg) {
		id := strings.TrimPrefix(m.Subject, SubjectOrderQuery)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var reply struct {
			Order *domain.OrderView `json:"order,omitempty"`
			Error *ErrorBody        `json:"error,omitempty"`
		}
		view, err := r.GetOrder(ctx, id)
		switch {
		case err == nil:
			reply.Order = &view
		default:
			var de *domain.Error
			if errors.As(err, &de) {
				reply.Error = &ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}
			} else {
				log.Error("order query", "order_id", id, "err", err)
				reply.Error = &ErrorBody{Code: string(domain.CodeUnavailable), Message: "the order could not be loaded; try again"}
			}
		}
		b, _ := json.Marshal(reply)
		if !reservedReplySubject(m.Reply) {
			_ = m.Respond(b)
		}
	})
}
