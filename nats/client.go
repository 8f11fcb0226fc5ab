package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/retry"
)

// ErrNoOutcome: no outcome recorded for the command ID (yet). The command
// may still be queued or in flight, or have failed for now (unavailable):
// wait, or resend it with the same command ID, which has it evaluated.
var ErrNoOutcome = errors.New("no outcome recorded for this command ID")

// ClientOptions tune a Client. The zero value is usable.
type ClientOptions struct {
	// Timeout applies when the caller's context has no deadline (default 10s).
	Timeout time.Duration
	// PublishRetries is how often a failed publish is retried, keeping the
	// command ID (default 3).
	PublishRetries int
	// TracerProvider traces each send (a producer span whose context the
	// command carries to the workers); nil traces nothing, but a send
	// still carries the trace context of its caller's ctx.
	TracerProvider trace.TracerProvider
	// CallbackSigner signs the callbacks PaymentCallback sends
	// (callbacksig.Signer, with the service's callback secrets); without
	// one PaymentCallback refuses to send.
	CallbackSigner CallbackSigner
}

// publishAttemptTimeout bounds one wait for JetStream's acknowledgement of
// a command; the publish is then retried under the same message ID, which
// JetStream stores once.
const publishAttemptTimeout = 2 * time.Second

// Client sends commands and waits for their outcomes.
type Client struct {
	nc     *natsgo.Conn
	js     jetstream.JetStream
	opts   ClientOptions
	tracer trace.Tracer
	inbox  string
	sub    *natsgo.Subscription
	mu     sync.Mutex
	wait   map[string]chan *natsgo.Msg
	kvOnce sync.Once
	kv     jetstream.KeyValue
	kvErr  error

	// status reports reconnections; reconnected ends at the next one (a
	// fresh context replaces it then), for the sends waiting meanwhile.
	status      chan natsgo.Status
	reconnected context.Context
	reconnect   context.CancelFunc
}

// NewClient subscribes one inbox for all replies of this client.
func NewClient(nc *natsgo.Conn, opts ClientOptions) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.PublishRetries <= 0 {
		opts.PublishRetries = 3
	}
	c := &Client{nc: nc, js: js, opts: opts, tracer: tracerOf(opts.TracerProvider), inbox: nc.NewInbox(), wait: map[string]chan *natsgo.Msg{}}
	c.sub, err = nc.Subscribe(c.inbox+".*", c.onReply)
	if err != nil {
		return nil, fmt.Errorf("subscribe reply inbox: %w", err)
	}
	if err := c.checkInbox(); err != nil {
		_ = c.sub.Unsubscribe()
		return nil, err
	}
	c.reconnected, c.reconnect = context.WithCancel(context.Background())
	c.status = nc.StatusChanged(natsgo.CONNECTED, natsgo.CLOSED)
	go c.watchReconnects()
	return c, nil
}

// inboxCheckTimeout bounds the round trip that tells whether the server
// admitted the reply inbox's subscription.
const inboxCheckTimeout = time.Second

// checkInbox returns a permission_denied error when the server refused the
// reply inbox's subscription: every send would otherwise wait in vain for
// its answer. The server reports a refusal before it answers the ping of a
// flush; a flush that fails (the connection is away) proves nothing, and
// the client is made anyway, as it would be without the check.
func (c *Client) checkInbox() error {
	if c.nc.FlushTimeout(min(c.opts.Timeout, inboxCheckTimeout)) != nil {
		return nil
	}
	if err := subscribePermissionError(c.nc, c.sub.Subject); err != nil {
		return fmt.Errorf("subscribe reply inbox: %w", err)
	}
	return nil
}

// Close stops listening for replies.
func (c *Client) Close() error {
	c.nc.RemoveStatusListener(c.status)
	return c.sub.Unsubscribe()
}

// watchReconnects wakes the sends waiting for replies whenever the
// connection comes back: a reply published while the client was away is
// lost, so they send their command again. It ends with the client or its
// connection.
func (c *Client) watchReconnects() {
	for st := range c.status {
		if st == natsgo.CLOSED {
			c.nc.RemoveStatusListener(c.status)
			return
		}
		c.mu.Lock()
		c.reconnect()
		c.reconnected, c.reconnect = context.WithCancel(context.Background())
		c.mu.Unlock()
	}
}

// untilReconnect returns a context that ends when the connection next comes back.
func (c *Client) untilReconnect() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnected
}

func (c *Client) onReply(m *natsgo.Msg) {
	token := m.Subject[len(c.inbox)+1:]
	c.mu.Lock()
	ch := c.wait[token]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

// SendOption adjusts one command.
type SendOption func(*Command)

// WithCommandID sets the command ID (default: a new UUID). Reuse it to retry.
func WithCommandID(id string) SendOption { return func(c *Command) { c.ID = id } }

// WithCorrelationID sets the correlation ID (default: the command ID).
func WithCorrelationID(id string) SendOption { return func(c *Command) { c.CorrelationID = id } }

// WithCausationID sets the causation ID.
func WithCausationID(id string) SendOption { return func(c *Command) { c.CausationID = id } }

// Send publishes a command durably and waits for its outcome. An outcome
// carrying an error is also returned as a *CommandError. When the caller's
// deadline passes first, the error wraps context.DeadlineExceeded: the
// command may still be applied; Outcome(ctx, id) or a resend with the same
// command ID tells.
//
// Every send of a command reaches the workers, which answer it: a command
// ID seen before gets the first outcome of its command (Duplicate), or is
// evaluated again if that command has no final outcome yet (it failed with
// unavailable, say), or is refused with command_id_reused if it names
// another command. If the connection drops and comes back while Send
// waits, the reply may have been lost, so Send sends the command again,
// under the same command ID; the answer may then say Duplicate for the
// command's own first send.
func (c *Client) Send(ctx context.Context, cmd Command) (out Outcome, err error) {
	ctx, span := c.tracer.Start(ctx, "send "+cmd.Type, trace.WithSpanKind(trace.SpanKindProducer))
	defer func() {
		if err != nil && out.Error == nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		endWithOutcome(span, out)
	}()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	if cmd.ID == "" {
		cmd.ID, cmd.FreshID = uuid.NewString(), true
	}
	if span.IsRecording() {
		span.SetAttributes(commandAttrs(cmd)...)
	}
	token := uuid.NewString()
	ch := make(chan *natsgo.Msg, 1)
	c.mu.Lock()
	c.wait[token] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.wait, token)
		c.mu.Unlock()
	}()
	for send := 1; ; send++ {
		reconnected := c.untilReconnect()
		err := c.publish(ctx, reconnected, cmd, c.inbox+"."+token, token+"."+strconv.Itoa(send))
		switch {
		case reconnected.Err() != nil && ctx.Err() == nil:
			continue // the connection came back meanwhile: send again
		case err != nil:
			return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID}, err
		}
		select {
		case m := <-ch:
			return decodeOutcome(m.Data)
		case <-reconnected.Done():
			// The reply may have gone out while the connection was down.
		case <-ctx.Done():
			return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID}, fmt.Errorf(
				"command %s was accepted but no outcome arrived in time; look it up later with its command ID: %w", cmd.ID, ctx.Err())
		}
	}
}

// publish stores one send of cmd in the command stream. Its message ID,
// msgID, is new for every send, so that JetStream's dedupe only drops a
// publish retried within this send, never a resend: the workers decide
// about those. A reconnection (reconnected ends) abandons the attempt.
func (c *Client) publish(ctx, reconnected context.Context, cmd Command, replyTo, msgID string) error {
	m := natsgo.NewMsg(CommandSubject(cmd.OrderID, cmd.Type))
	m.Data = cmd.Body
	m.Header.Set(HeaderMsgID, msgID)
	m.Header.Set(HeaderCommandID, cmd.ID)
	m.Header.Set(HeaderCommandType, cmd.Type)
	m.Header.Set(HeaderReplyTo, replyTo)
	if cmd.FreshID {
		m.Header.Set(HeaderCommandIDFresh, "true")
	}
	if cmd.CorrelationID != "" {
		m.Header.Set(HeaderCorrelationID, cmd.CorrelationID)
	}
	if cmd.CausationID != "" {
		m.Header.Set(HeaderCausationID, cmd.CausationID)
	}
	if cmd.Signature != "" {
		m.Header.Set(HeaderSignature, cmd.Signature)
	}
	injectTrace(ctx, m.Header)
	sctx, cancel := context.WithCancel(ctx) // this send: ends with ctx or a reconnection
	defer cancel()
	defer context.AfterFunc(reconnected, cancel)()
	policy := publishRetry
	policy.Attempts = c.opts.PublishRetries + 1
	err := retry.Do(sctx, policy, func(sctx context.Context, _ int) error {
		actx, cancel := context.WithTimeout(sctx, publishAttemptTimeout)
		defer cancel()
		// A duplicate acknowledgement means an earlier attempt of this
		// send was stored; its reply comes to this send's inbox.
		_, err := c.js.PublishMsg(actx, m)
		if err == nil {
			return nil
		}
		// A refused publish is dropped unanswered: the wait ends without an
		// acknowledgement, and another attempt would be refused too.
		if perr := permissionError(c.nc, m.Subject); perr != nil {
			return retry.Permanent(perr)
		}
		if sctx.Err() != nil || !retryablePublish(err) {
			return retry.Permanent(err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("publish command %s: %w", cmd.ID, err)
	}
	return nil
}

// publishRetry paces the attempts of one send whose publish JetStream did
// not acknowledge; the client's PublishRetries bounds them.
var publishRetry = retry.Policy{First: 100 * time.Millisecond, Max: time.Second}

func retryablePublish(err error) bool {
	return errors.Is(err, natsgo.ErrNoResponders) || errors.Is(err, natsgo.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, natsgo.ErrConnectionReconnecting) || errors.Is(err, natsgo.ErrDisconnected)
}

// Outcome returns the recorded outcome of a command, or ErrNoOutcome while
// it has none.
func (c *Client) Outcome(ctx context.Context, commandID string) (Outcome, error) {
	kv, err := c.bucket(ctx)
	if err != nil {
		return Outcome{}, err
	}
	e, err := kv.Get(ctx, commandID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Outcome{CommandID: commandID}, ErrNoOutcome
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("look up outcome of %s: %w", commandID, err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Outcome{}, fmt.Errorf("malformed outcome of %s: %w", commandID, err)
	}
	if rec.Pending {
		return Outcome{CommandID: commandID, OrderID: rec.OrderID}, ErrNoOutcome
	}
	return decodeOutcome(e.Value())
}

func (c *Client) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	c.kvOnce.Do(func() { c.kv, c.kvErr = c.js.KeyValue(ctx, BucketOutcomes) })
	if c.kvErr != nil {
		return nil, fmt.Errorf("open outcome bucket %s (is ordo serve running?): %w", BucketOutcomes, c.kvErr)
	}
	return c.kv, nil
}

func decodeOutcome(b []byte) (Outcome, error) {
	var out Outcome
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("malformed outcome: %w", err)
	}
	if out.Error != nil {
		return out, &CommandError{Code: out.Error.Code, Message: out.Error.Message, Field: out.Error.Field}
	}
	return out, nil
}

// SendCommand encodes any domain command and sends it; the typed methods
// below are shorthands for it.
func (c *Client) SendCommand(ctx context.Context, cmd domain.Command, opts ...SendOption) (Outcome, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return Outcome{}, err
	}
	out := Command{Type: cmd.CommandType(), OrderID: cmd.OrderID(), Body: body}
	for _, o := range opts {
		o(&out)
	}
	return c.Send(ctx, out)
}

// PlaceOrder sends PlaceOrder.
func (c *Client) PlaceOrder(ctx context.Context, cmd domain.PlaceOrder, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// MarkStockReserved sends MarkStockReserved.
func (c *Client) MarkStockReserved(ctx context.Context, cmd domain.MarkStockReserved, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// MarkStockRejected sends MarkStockRejected.
func (c *Client) MarkStockRejected(ctx context.Context, cmd domain.MarkStockRejected, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// ConfirmPayment sends ConfirmPayment.
func (c *Client) ConfirmPayment(ctx context.Context, cmd domain.ConfirmPayment, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// FailPayment sends FailPayment.
func (c *Client) FailPayment(ctx context.Context, cmd domain.FailPayment, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// CancelOrder sends CancelOrder.
func (c *Client) CancelOrder(ctx context.Context, cmd domain.CancelOrder, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// ShipOrder sends ShipOrder.
func (c *Client) ShipOrder(ctx context.Context, cmd domain.ShipOrder, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// ConfirmDelivery sends ConfirmDelivery.
func (c *Client) ConfirmDelivery(ctx context.Context, cmd domain.ConfirmDelivery, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// CompleteOrder sends CompleteOrder.
func (c *Client) CompleteOrder(ctx context.Context, cmd domain.CompleteOrder, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// RequestRefund sends RequestRefund.
func (c *Client) RequestRefund(ctx context.Context, cmd domain.RequestRefund, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// CompleteRefund sends CompleteRefund.
func (c *Client) CompleteRefund(ctx context.Context, cmd domain.CompleteRefund, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// RejectRefund sends RejectRefund.
func (c *Client) RejectRefund(ctx context.Context, cmd domain.RejectRefund, opts ...SendOption) (Outcome, error) {
	return c.SendCommand(ctx, cmd, opts...)
}

// GetOrder asks the service for an order as its aggregate sees it.
func (c *Client) GetOrder(ctx context.Context, orderID string) (domain.OrderView, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	m, err := c.nc.RequestWithContext(ctx, SubjectOrderQuery+orderID, nil)
	if perr := permissionError(c.nc, SubjectOrderQuery+orderID); err != nil && perr != nil {
		err = perr
	}
	if err != nil {
		return domain.OrderView{}, fmt.Errorf("get order %s: %w", orderID, err)
	}
	var reply struct {
		Order *domain.OrderView `json:"order"`
		Error *ErrorBody        `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		return domain.OrderView{}, fmt.Errorf("get order %s: malformed reply: %w", orderID, err)
	}
	if reply.Error != nil {
		return domain.OrderView{}, &CommandError{Code: reply.Error.Code, Message: reply.Error.Message, Field: reply.Error.Field}
	}
	if reply.Order == nil {
		return domain.OrderView{}, fmt.Errorf("get order %s: empty reply", orderID)
	}
	return *reply.Order, nil
}
