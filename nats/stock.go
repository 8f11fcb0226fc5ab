package nats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// SubjectStockPrefix + <sku>.<op> is the stock API, core NATS
// request-reply (ops: add, get, reserve, release). Stock commands are not
// queued in the command stream: each SKU has one writer (its lane in
// commands.StockService) that answers only after the events are durable,
// so the reply itself is the acknowledgement; a client that times out
// retries with the same command ID.
const SubjectStockPrefix = "ordo.stock.v1."

// StockRequest is the JSON body of a stock request; fields by op:
// add: quantity, command_id; reserve: order_id, quantity, command_id;
// release: order_id, command_id; get: none.
type StockRequest struct {
	CommandID string `json:"command_id,omitempty"`
	OrderID   string `json:"order_id,omitempty"`
	Quantity  int64  `json:"quantity,omitempty"`
}

// StockReply is the reply: the stock after the command, the events it
// appended (none when it was already done) and where, or an error.
type StockReply struct {
	domain.StockView
	CommandID string     `json:"command_id,omitempty"`
	Events    []string   `json:"events,omitempty"`
	Position  uint64     `json:"position,omitempty"`
	Error     *ErrorBody `json:"error,omitempty"`
}

// StockHandler is what the stock API needs.
type StockHandler interface {
	Execute(ctx context.Context, req commands.StockRequest) commands.StockResult
	Get(ctx context.Context, sku string) (domain.StockView, error)
}

// ServeStock answers the stock API. Several processes may serve it (a
// queue group); each SKU then has one writer per process and the event
// store's expected revision settles races between them.
func ServeStock(nc *natsgo.Conn, h StockHandler, log *slog.Logger) (*natsgo.Subscription, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return nc.QueueSubscribe(SubjectStockPrefix+">", "ordo-stock", func(m *natsgo.Msg) {
		// Each request on its own goroutine: the lane batches concurrent ones.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			reply := handleStock(ctx, h, m, log)
			b, _ := json.Marshal(reply)
			out := natsgo.NewMsg(m.Reply)
			out.Data = b
			status := 200
			if reply.Error != nil {
				status = domain.NATSStatus(domain.Code(reply.Error.Code))
			}
			out.Header.Set(HeaderStatus, fmt.Sprint(status))
			if m.Reply != "" {
				_ = m.RespondMsg(out)
			}
		}()
	})
}

func handleStock(ctx context.Context, h StockHandler, m *natsgo.Msg, log *slog.Logger) StockReply {
	rest := strings.TrimPrefix(m.Subject, SubjectStockPrefix)
	i := strings.LastIndexByte(rest, '.')
	sku, op := rest[:i], rest[i+1:]
	fail := func(err error) StockReply {
		var de *domain.Error
		if errors.As(err, &de) {
			return StockReply{Error: &ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}}
		}
		log.Error("stock request", "sku", sku, "op", op, "err", err)
		return StockReply{Error: &ErrorBody{Code: string(domain.CodeUnavailable), Message: "the stock could not be changed or read; retry with the same command_id"}}
	}
	if op == "get" {
		v, err := h.Get(ctx, sku)
		if err != nil {
			return fail(err)
		}
		return StockReply{StockView: v}
	}
	var req StockRequest
	if len(bytes.TrimSpace(m.Data)) > 0 {
		d := json.NewDecoder(bytes.NewReader(m.Data))
		d.DisallowUnknownFields()
		if err := d.Decode(&req); err != nil {
			return fail(&domain.Error{Code: domain.CodeInvalidCommand, Message: "the body must be a JSON object: " + err.Error()})
		}
	}
	var cmd domain.StockCommand
	switch op {
	case "add":
		cmd = domain.AddStock{SKU: sku, Quantity: req.Quantity}
	case "reserve":
		cmd = domain.ReserveStock{SKU: sku, OrderID: req.OrderID, Quantity: req.Quantity}
	case "release":
		cmd = domain.ReleaseStock{SKU: sku, OrderID: req.OrderID}
	default:
		return fail(&domain.Error{Code: domain.CodeUnknownCommand, Message: fmt.Sprintf("unknown stock operation %q; use add, get, reserve or release", op)})
	}
	if req.CommandID == "" || !validCommandID(req.CommandID) {
		return fail(&domain.Error{Code: domain.CodeInvalidCommand, Field: "command_id", Message: "is required: 1 to 128 letters, digits or - _ = ."})
	}
	res := h.Execute(ctx, commands.StockRequest{CommandID: req.CommandID, CorrelationID: req.CommandID, Command: cmd})
	if res.Err != nil {
		return fail(res.Err)
	}
	return StockReply{StockView: res.Stock, CommandID: res.CommandID, Events: res.Events, Position: res.Position}
}

// stockRequest sends one stock request and decodes the reply.
func (c *Client) stockRequest(ctx context.Context, sku, op string, req StockRequest) (StockReply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return StockReply{}, err
	}
	m, err := c.nc.RequestWithContext(ctx, SubjectStockPrefix+sku+"."+op, body)
	if err != nil {
		return StockReply{}, fmt.Errorf("stock %s %s: %w", op, sku, err)
	}
	var reply StockReply
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		return StockReply{}, fmt.Errorf("stock %s %s: malformed reply: %w", op, sku, err)
	}
	if reply.Error != nil {
		return reply, &CommandError{Code: reply.Error.Code, Message: reply.Error.Message, Field: reply.Error.Field}
	}
	return reply, nil
}

// AddStock adds units to a SKU. An empty commandID gets a new one; reuse
// one to retry safely.
func (c *Client) AddStock(ctx context.Context, sku string, quantity int64, commandID string) (StockReply, error) {
	if commandID == "" {
		commandID = uuid.NewString()
	}
	return c.stockRequest(ctx, sku, "add", StockRequest{CommandID: commandID, Quantity: quantity})
}

// ReserveStock reserves units of a SKU for an order; repeating it for the
// same order changes nothing. Errors match domain.ErrOutOfStock.
func (c *Client) ReserveStock(ctx context.Context, sku, orderID string, quantity int64, commandID string) (StockReply, error) {
	if commandID == "" {
		commandID = uuid.NewString()
	}
	return c.stockRequest(ctx, sku, "reserve", StockRequest{CommandID: commandID, OrderID: orderID, Quantity: quantity})
}

// ReleaseStock gives an order's reservation back.
func (c *Client) ReleaseStock(ctx context.Context, sku, orderID, commandID string) (StockReply, error) {
	if commandID == "" {
		commandID = uuid.NewString()
	}
	return c.stockRequest(ctx, sku, "release", StockRequest{CommandID: commandID, OrderID: orderID})
}

// GetStock reads a SKU's stock.
func (c *Client) GetStock(ctx context.Context, sku string) (domain.StockView, error) {
	r, err := c.stockRequest(ctx, sku, "get", StockRequest{})
	return r.StockView, err
}
