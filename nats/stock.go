package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/retry"
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
// appended (none when it was already done) and where, or an error (on the
// wire, an error reply is {"error":{…}} alone, with no stock fields).
type StockReply struct {
	domain.StockView
	CommandID string     `json:"command_id,omitempty"`
	Events    []string   `json:"events,omitempty"`
	Position  uint64     `json:"position,omitempty"`
	Error     *ErrorBody `json:"error,omitempty"`
}

// StockHandler is what the stock API needs (commands.StockAPI, which
// checks reservations against their orders before commands.StockService's
// lanes decide them).
type StockHandler interface {
	// Submit queues a command; done gets its result exactly once, and
	// must neither block nor take long.
	Submit(req commands.StockRequest, done func(commands.StockResult))
	// Get returns a SKU's stock. Errors: *domain.Error for a bad SKU or one
	// that never had stock (not_found), else infrastructure.
	Get(ctx context.Context, sku string) (domain.StockView, error)
}

// stockGetTimeout bounds a get; commands have no deadline here: the lane
// answers each one, and a requester that gave up resends the command ID.
const stockGetTimeout = 30 * time.Second

// ServeStock answers the stock API. Several processes may serve it (a
// queue group); each SKU then has one writer per process and the event
// store's expected revision settles races between them.
//
// A request costs no goroutine of its own: the subscription's goroutine
// decodes it and hands it to the SKU's lane, and the lane sends the reply
// once the batch holding it is durable.
func ServeStock(nc *natsgo.Conn, h StockHandler, log *slog.Logger) (*natsgo.Subscription, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return nc.QueueSubscribe(SubjectStockPrefix+">", "ordo-stock", func(m *natsgo.Msg) {
		serveStock(nc, h, m, log)
	})
}

func serveStock(nc *natsgo.Conn, h StockHandler, m *natsgo.Msg, log *slog.Logger) {
	rest := strings.TrimPrefix(m.Subject, SubjectStockPrefix)
	i := strings.LastIndexByte(rest, '.')
	sku, op := rest[:max(i, 0)], rest[i+1:]
	if op == "get" {
		go func() { // rare, and it waits: not on the subscription's goroutine
			ctx, cancel := context.WithTimeout(context.Background(), stockGetTimeout)
			defer cancel()
			v, err := h.Get(ctx, sku)
			if err != nil {
				replyStock(nc, m.Reply, stockFailure(err, sku, op, log))
				return
			}
			replyStock(nc, m.Reply, StockReply{StockView: v})
		}()
		return
	}
	if len(m.Data) > maxStockRequest {
		replyStock(nc, m.Reply, stockFailure(&domain.Error{Code: domain.CodePayloadTooLarge, Message: fmt.Sprintf(
			"a stock request is at most %d bytes (64 KiB), this one is %d", maxStockRequest, len(m.Data))}, sku, op, log))
		return
	}
	req, err := stockCommand(sku, op, m.Data)
	if err != nil {
		replyStock(nc, m.Reply, stockFailure(err, sku, op, log))
		return
	}
	reply := m.Reply
	h.Submit(req, func(res commands.StockResult) {
		if res.Err != nil {
			replyStock(nc, reply, stockFailure(res.Err, sku, op, log))
			return
		}
		replyStock(nc, reply, StockReply{StockView: res.Stock, CommandID: res.CommandID, Events: res.Events, Position: res.Position})
	})
}

// stockCommand reads a stock command from its subject's op and its body.
func stockCommand(sku, op string, body []byte) (commands.StockRequest, error) {
	req, err := decodeStockRequest(body)
	if err != nil {
		return commands.StockRequest{}, stockBodyError(err)
	}
	// An order ID in upper or mixed case names the order of its canonical
	// (lower-case) form, as everywhere else.
	orderID, _ := domain.NormalizeOrderID(req.OrderID)
	var cmd domain.StockCommand
	switch op {
	case "add":
		cmd = domain.AddStock{SKU: sku, Quantity: req.Quantity}
	case "reserve":
		cmd = domain.ReserveStock{SKU: sku, OrderID: orderID, Quantity: req.Quantity}
	case "release":
		cmd = domain.ReleaseStock{SKU: sku, OrderID: orderID}
	default:
		return commands.StockRequest{}, &domain.Error{Code: domain.CodeUnknownCommand, Message: fmt.Sprintf("unknown stock operation %q; use add, get, reserve or release", op)}
	}
	if !validCommandID(req.CommandID) {
		return commands.StockRequest{}, &domain.Error{Code: domain.CodeInvalidCommand, Field: "command_id", Message: "is required: 1 to 128 letters, digits or - _ = ."}
	}
	return commands.StockRequest{CommandID: req.CommandID, CorrelationID: req.CommandID, Command: cmd}, nil
}

// maxStockRequest is the largest stock request body accepted, the command
// stream's limit; a real one is under a hundred bytes.
const maxStockRequest = 64 << 10

// stockBodyError says what is wrong with a body that does not decode, in
// the request's own terms rather than the decoder's.
func stockBodyError(err error) *domain.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		want := "a string"
		if te.Field == "quantity" {
			want = "a whole number"
		}
		return &domain.Error{Code: domain.CodeInvalidCommand, Field: te.Field, Message: fmt.Sprintf("must be %s, got a JSON %s", want, jsonKind(te.Value))}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &domain.Error{Code: domain.CodeInvalidCommand, Field: strings.Trim(f, `"`),
			Message: "is not a field of a stock request; the fields are command_id, order_id and quantity"}
	}
	return &domain.Error{Code: domain.CodeInvalidCommand, Message: `the body must be one JSON object such as {"command_id":"c-1","order_id":"0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a","quantity":2}`}
}

// jsonKind names the kind of JSON value an UnmarshalTypeError found
// ("number 1.5" is a number).
func jsonKind(value string) string {
	kind, _, _ := strings.Cut(value, " ")
	return kind
}

// stockFailure is the reply to a refused or failed stock request.
func stockFailure(err error, sku, op string, log *slog.Logger) StockReply {
	var de *domain.Error
	if errors.As(err, &de) {
		return StockReply{Error: &ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}}
	}
	log.Error("stock request", "sku", sku, "op", op, "err", err)
	return StockReply{Error: &ErrorBody{Code: string(domain.CodeUnavailable), Message: "the stock could not be changed or read; retry with the same command_id"}}
}

// stockError is the body of an error reply.
type stockError struct {
	Error *ErrorBody `json:"error"`
}

// stockOK is the status header of every successful reply, shared: nats.go
// only reads a message's header.
var stockOK = natsgo.Header{HeaderStatus: []string{"200"}}

// replyStock sends reply to a requester's inbox ("" when it wants none).
func replyStock(nc *natsgo.Conn, inbox string, reply StockReply) {
	if inbox == "" || reservedReplySubject(inbox) {
		return
	}
	out := &natsgo.Msg{Subject: inbox, Header: stockOK}
	if reply.Error != nil {
		// The error alone: no stock fields, which would read as a SKU
		// with nothing on hand.
		out.Data, _ = json.Marshal(stockError{Error: reply.Error})
		out.Header = natsgo.Header{HeaderStatus: []string{strconv.Itoa(domain.NATSStatus(domain.Code(reply.Error.Code)))}}
	} else {
		out.Data = marshalStockReply(reply)
	}
	_ = nc.PublishMsg(out) // a lost reply is a timeout for the requester, who resends the command ID
}

// stockRequest sends one stock request and decodes the reply. With a
// context that has no deadline and cannot be cancelled, it waits
// ClientOptions.Timeout on nats.go's pooled timers instead of deriving a
// context for every request.
func (c *Client) stockRequest(ctx context.Context, sku, op string, req StockRequest) (StockReply, error) {
	subject, body := SubjectStockPrefix+sku+"."+op, marshalStockRequest(req)
	var m *natsgo.Msg
	var err error
	if _, ok := ctx.Deadline(); ok || ctx.Done() != nil {
		if !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
			defer cancel()
		}
		m, err = c.nc.RequestWithContext(ctx, subject, body)
	} else {
		m, err = c.nc.Request(subject, body, c.opts.Timeout)
	}
	if errors.Is(err, natsgo.ErrNoResponders) {
		m, err = c.awaitStockResponder(ctx, subject, body)
	}
	if perr := permissionError(c.nc, subject); err != nil && perr != nil {
		err = perr
	}
	if err != nil {
		return StockReply{}, fmt.Errorf("stock %s %s: %w", op, sku, err)
	}
	var reply StockReply
	if err := unmarshalStockReply(m.Data, &reply); err != nil {
		return StockReply{}, fmt.Errorf("stock %s %s: malformed reply: %w", op, sku, err)
	}
	if reply.Error != nil {
		return reply, &CommandError{Code: reply.Error.Code, Message: reply.Error.Message, Field: reply.Error.Field}
	}
	return reply, nil
}

// stockResponderRetry paces the resends of a stock request that no
// instance was there to take.
var stockResponderRetry = retry.Policy{First: 50 * time.Millisecond, Max: 500 * time.Millisecond}

// awaitStockResponder sends a stock request again until an instance
// answers or the request's time (ctx's deadline, else
// ClientOptions.Timeout) is up. Only the holder of the lease saga-and-stock
// serves the stock API, so between one holder and the next (a takeover
// lasts about the lease's TTL) NATS answers "no responders" at once. A
// stock request is safe to send again: it carries its command ID.
func (c *Client) awaitStockResponder(ctx context.Context, subject string, body []byte) (*natsgo.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	var m *natsgo.Msg
	err := retry.Do(ctx, stockResponderRetry, func(ctx context.Context, _ int) error {
		var err error
		m, err = c.nc.RequestWithContext(ctx, subject, body)
		if err == nil || errors.Is(err, natsgo.ErrNoResponders) {
			return err
		}
		return retry.Permanent(err)
	})
	if errors.Is(err, natsgo.ErrNoResponders) {
		return nil, fmt.Errorf("no ordo serve instance took the request (the stock API is served by the instance holding the lease saga-and-stock; is one running?): %w", err)
	}
	return m, err
}

// AddStock adds units to a SKU. An empty commandID gets a new one; reuse
// one to retry safely.
func (c *Client) AddStock(ctx context.Context, sku string, quantity int64, commandID string) (StockReply, error) {
	if commandID == "" {
		commandID = uuid.NewString()
	}
	return c.stockRequest(ctx, sku, "add", StockRequest{CommandID: commandID, Quantity: quantity})
}

// ReserveStock reserves units of a SKU for an order: an order that exists,
// for exactly its quantity of the SKU. Repeating it changes nothing.
// Errors match domain.ErrOutOfStock, ErrNotFound, ErrReservationConflict,
// ErrIllegalTransition, or ErrSagaOnly when the service's saga reserves.
func (c *Client) ReserveStock(ctx context.Context, sku, orderID string, quantity int64, commandID string) (StockReply, error) {
	if commandID == "" {
		commandID = uuid.NewString()
	}
	return c.stockRequest(ctx, sku, "reserve", StockRequest{CommandID: commandID, OrderID: orderID, Quantity: quantity})
}

// ReleaseStock gives an order's reservation back; refused while the order
// awaits payment or is paid, and with ErrSagaOnly when the service's saga
// manages stock.
func (c *Client) ReleaseStock(ctx context.Context, sku, orderID, commandID string) (StockReply, error) {
	if commandID == "" {
		commandID = uuid.NewString()
	}
	return c.stockRequest(ctx, sku, "release", StockRequest{CommandID: commandID, OrderID: orderID})
}

// GetStock reads a SKU's stock; a SKU that never had stock is
// domain.ErrNotFound.
func (c *Client) GetStock(ctx context.Context, sku string) (domain.StockView, error) {
	r, err := c.stockRequest(ctx, sku, "get", StockRequest{})
	return r.StockView, err
}
