package nats

import (
	"errors"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// HeaderSignature carries a PaymentCallback's signature of its body
// (callbacksig: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">).
const HeaderSignature = "Ordo-Signature"

// CallbackVerifier checks a payment callback's signature (callbacksig.Verifier
// implements it over the service's callback secrets).
type CallbackVerifier interface {
	// VerifyCallback checks signature, the callback's Ordo-Signature
	// header, against its raw body at time at; an error says why the
	// callback is refused and never contains a secret.
	VerifyCallback(signature string, body []byte, at time.Time) error
}

// CallbackSigner signs a payment callback's raw body at time at, returning
// the Ordo-Signature header (callbacksig.Signer implements it).
type CallbackSigner interface {
	SignCallback(body []byte, at time.Time) (string, error)
}

// errNoVerifier refuses callbacks when the workers were given no way to
// check them: an unsigned callback must never mark an order paid.
var errNoVerifier = errors.New("this service checks no callback signatures (no callback secrets are configured), so it accepts no payment callback")

// verifyCallback checks a PaymentCallback's signature as of the time
// JetStream stored it, so that a callback accepted in time is not refused
// when it is delivered again after an outage of the event store or a
// restart. Other commands pass.
func (w *Worker) verifyCallback(cmd Command, stored time.Time) error {
	if cmd.Type != domain.CmdPaymentCallback {
		return nil
	}
	if w.cfg.Callbacks == nil {
		return errNoVerifier
	}
	return w.cfg.Callbacks.VerifyCallback(cmd.Signature, cmd.Body, stored)
}
