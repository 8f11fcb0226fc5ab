package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/callbacksig"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// Limits of the payment callback endpoint.
const (
	maxCallbackBody = 64 << 10         // the command stream's payload limit
	callbackTimeout = 10 * time.Second // the reply waits this long for the outcome
)

// registerCallbacks serves POST /v1/payments/callback: a payment provider's
// callback, sent as a PaymentCallback command through the command stream
// (see nats.Client.PaymentCallback) and answered once the outcome is
// durable.
func (s *Service) registerCallbacks(mux *http.ServeMux) {
	h := &callbackHandler{nc: s.nc, verify: s.callbacks, log: s.log.With("api", "payment_callback")}
	client, err := ordonats.NewClient(s.nc, ordonats.ClientOptions{Timeout: callbackTimeout})
	if err != nil {
		// Only a closed connection fails here; the handler answers 503.
		h.log.Error("payment callbacks: no NATS client", "err", err)
	}
	h.client = client
	mux.Handle("POST /v1/payments/callback", h)
}

type callbackHandler struct {
	nc     *natsgo.Conn
	client *ordonats.Client
	verify callbacksig.Verifier
	log    *slog.Logger
}

// callbackReply is the response body: the outcome of the payment's
// command, or the error.
type callbackReply struct {
	CommandID string              `json:"command_id,omitempty"`
	OrderID   string              `json:"order_id,omitempty"`
	PaymentID string              `json:"payment_id,omitempty"`
	Status    string              `json:"status,omitempty"`
	Duplicate bool                `json:"duplicate"`
	Events    []string            `json:"events"`
	State     string              `json:"state,omitempty"`
	Revision  int64               `json:"revision"`
	Position  uint64              `json:"position"`
	Error     *ordonats.ErrorBody `json:"error,omitempty"`
	// Ignored explains a callback accepted with nothing to record: a
	// failure reported for an order that is not awaiting payment.
	Ignored string `json:"ignored,omitempty"`
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallbackBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, &domain.Error{Code: domain.CodePayloadTooLarge, Message: "a payment callback is at most 64 KiB"})
			return
		}
		h.fail(w, &domain.Error{Code: domain.CodeInvalidCommand, Message: "the body could not be read: " + err.Error()})
		return
	}
	// The signature first: an unsigned caller learns nothing else.
	sig := r.Header.Get(callbacksig.Header)
	if err := h.verify.VerifyCallback(sig, body, time.Now()); err != nil {
		// Logged so that a provider with a wrong secret is noticed; the
		// service's log handler limits how often.
		h.log.Warn("payment callback refused: not signed with a callback secret", "remote", r.RemoteAddr, "reason", err)
		h.fail(w, &domain.Error{Code: domain.CodeUnauthenticated, Field: callbacksig.Header, Message: err.Error()})
		return
	}
	cb, err := domain.DecodePaymentCallback(body)
	if err != nil {
		h.fail(w, err)
		return
	}
	if h.client == nil || !h.nc.IsConnected() {
		h.fail(w, errUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), callbackTimeout)
	defer cancel()
	// Forwarded as signed, so the workers check the provider's own
	// signature: the command stream takes no callback on anyone's word.
	out, err := h.client.PaymentCallbackSigned(ctx, body, sig)
	reply := callbackReply{CommandID: out.CommandID, OrderID: cb.Order, PaymentID: cb.PaymentID, Status: cb.Status,
		Duplicate: out.Duplicate, Events: out.Events, State: out.State, Revision: out.Revision, Position: out.Position}
	if reply.Events == nil {
		reply.Events = []string{}
	}
	status := http.StatusOK
	if err != nil {
		var eb ordonats.ErrorBody
		status, eb = h.errorStatus(err, cb)
		reply.Error = &eb
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		// A failed payment moves no money: reported for an order that is
		// not awaiting payment (cancelled, paid by another payment, …) there
		// is nothing to record. Answering 409 would make the provider resend
		// it for days, so it is acknowledged.
		if cb.Status == domain.PaymentStatusFailed && eb.Code == string(domain.CodeIllegalTransition) {
			status, reply.Error = http.StatusOK, nil
			reply.Ignored = "the order is not awaiting payment; a failed payment changes nothing: " + eb.Message
		}
	}
	writeCallbackJSON(w, status, reply)
}

var errUnavailable = &domain.Error{Code: domain.CodeUnavailable,
	Message: "the payment callback could not be confirmed; send it again (resending is safe)"}

// errorStatus maps an error of Client.PaymentCallback to the HTTP status
// and body: a refusal keeps its code; anything else (NATS unreachable, no
// outcome in time) is 503, since a resend is safe and may succeed.
func (h *callbackHandler) errorStatus(err error, cb domain.PaymentCallback) (int, ordonats.ErrorBody) {
	var ce *ordonats.CommandError
	var de *domain.Error
	switch {
	case errors.As(err, &ce):
		return domain.HTTPStatus(domain.Code(ce.Code)), ordonats.ErrorBody{Code: ce.Code, Message: ce.Message, Field: ce.Field}
	case errors.As(err, &de):
		return domain.HTTPStatus(de.Code), ordonats.ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}
	}
	h.log.Error("payment callback not confirmed", "order_id", cb.Order, "payment_id", cb.PaymentID, "status", cb.Status, "err", err)
	return domain.HTTPStatus(errUnavailable.Code), ordonats.ErrorBody{Code: string(errUnavailable.Code), Message: errUnavailable.Message}
}

func (h *callbackHandler) fail(w http.ResponseWriter, err error) {
	var de *domain.Error
	if !errors.As(err, &de) {
		de = &domain.Error{Code: domain.CodeInternal, Message: "internal error"}
	}
	if de.Code == domain.CodeUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeCallbackJSON(w, domain.HTTPStatus(de.Code), map[string]any{
		"error": ordonats.ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}})
}

func writeCallbackJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages show "<token>" as such
	_ = enc.Encode(v)
}
