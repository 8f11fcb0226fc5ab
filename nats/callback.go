package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
)

// Payment callbacks travel as commands of type PaymentCallback on the usual
// subject, ordo.cmd.order.<order-id>.PaymentCallback, with the provider's
// JSON as the body; the workers decode them into ConfirmPayment or
// FailPayment (domain.DecodeCommand). HTTP callbacks (POST
// /v1/payments/callback) are sent through PaymentCallback below, so there
// is one path: durable in the command stream first, applied by the
// workers, answered once the events are durable. A separate request-reply
// responder for callbacks would need its own dedupe, dead letters and
// redelivery, which the command stream already has.

// PaymentCallback sends a payment provider's callback and waits for its
// outcome. The command ID is the callback's idempotency key
// (domain.PaymentCallback.CommandID), so the same report of a payment sent
// again, concurrently or later, appends nothing and gets the first outcome
// back with Duplicate set.
//
// One exception: a first attempt that was refused without recording
// anything (the order did not exist yet, or could not take the payment
// yet) is not a final answer for a provider that retries;
// when a resend finds such an outcome, it is executed again under a fresh
// command ID. This is safe because the order, not the command ID, keeps a
// payment from counting twice: it records each payment ID once.
//
// The callback is signed with ClientOptions.CallbackSigner (the workers
// refuse unsigned callbacks). Options may set the correlation and
// causation IDs; the command ID is always the derived one.
func (c *Client) PaymentCallback(ctx context.Context, cb domain.PaymentCallback, opts ...SendOption) (Outcome, error) {
	cb.Order, _ = domain.NormalizeOrderID(cb.Order) // one order, one idempotency key, whatever the case
	if err := cb.Validate(); err != nil {
		return Outcome{OrderID: cb.Order}, err
	}
	body, err := json.Marshal(cb)
	if err != nil {
		return Outcome{}, err
	}
	if c.opts.CallbackSigner == nil {
		return Outcome{OrderID: cb.Order}, errors.New("payment callbacks must be signed: give the client a CallbackSigner (callbacksig.Signer with the service's callback secret)")
	}
	sig, err := c.opts.CallbackSigner.SignCallback(body, time.Now())
	if err != nil {
		return Outcome{OrderID: cb.Order}, fmt.Errorf("sign payment callback: %w", err)
	}
	return c.sendCallback(ctx, cb, body, sig, opts)
}

// PaymentCallbackSigned sends a callback exactly as its provider signed
// it: the raw body and its Ordo-Signature header, which the workers check
// (the HTTP endpoint forwards callbacks this way). Otherwise it is
// PaymentCallback.
func (c *Client) PaymentCallbackSigned(ctx context.Context, body []byte, signature string, opts ...SendOption) (Outcome, error) {
	cb, err := domain.DecodePaymentCallback(body)
	if err != nil {
		return Outcome{}, err
	}
	return c.sendCallback(ctx, cb, body, signature, opts)
}

// CallbackNamespace is the UUID namespace of callback command IDs; non-Go
// clients derive the same IDs with it (README, "Payment callbacks").
var CallbackNamespace = uuid.MustParse("b4074bc2-3050-46d1-ac45-5f22299f60c9")

// CallbackCommandID is the command ID a callback travels under: the
// name-based UUID (version 5, SHA-1) of cb.IdempotencyKey() in
// CallbackNamespace. The same report of a payment always gets the same ID,
// so a resent callback is answered with its first outcome.
func CallbackCommandID(cb domain.PaymentCallback) string {
	return uuid.NewSHA1(CallbackNamespace, []byte(cb.IdempotencyKey())).String()
}

// sendCallback sends a validated callback under its derived command ID.
func (c *Client) sendCallback(ctx context.Context, cb domain.PaymentCallback, body []byte, sig string, opts []SendOption) (Outcome, error) {
	cmd := Command{Type: domain.CmdPaymentCallback, OrderID: cb.Order, Body: body}
	for _, o := range opts {
		o(&cmd)
	}
	cmd.ID, cmd.Signature = CallbackCommandID(cb), sig
	out, err := c.Send(ctx, cmd)
	if out.Duplicate && refusedForNow(out) {
		cmd.ID = CallbackCommandID(cb) + "-" + uuid.NewString()[:8]
		out, err = c.Send(ctx, cmd)
	}
	return out, err
}

// refusedForNow reports whether an outcome refused a callback without
// recording it, for a reason that may pass.
func refusedForNow(out Outcome) bool {
	if out.Error == nil || len(out.Events) > 0 {
		return false
	}
	switch domain.Code(out.Error.Code) {
	case domain.CodeNotFound, domain.CodeIllegalTransition:
		return true
	}
	return false
}
