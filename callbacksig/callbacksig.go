// Package callbacksig signs and verifies payment callbacks, the way Stripe
// and Adyen sign theirs: the header
//
//	Ordo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">
//
// with a secret shared between Ordo and the payment provider. The
// timestamp is signed with the body, so a captured signature cannot be
// reused under a fresh timestamp, and a callback whose timestamp is
// outside a tolerance (default 5 minutes) is refused, so a captured
// callback cannot be replayed days later. A header may carry several v1
// values (one per secret the sender holds) and a provider may have two
// secrets active at once, so secrets can be rotated without refusing a
// single callback. Signatures are compared in constant time.
package callbacksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is the HTTP and NATS header that carries the signature.
const Header = "Ordo-Signature"

// DefaultTolerance is how far a callback's timestamp may be from the
// time it is checked at.
const DefaultTolerance = 5 * time.Minute

// Reasons a callback is refused; Verify's errors wrap one of them.
var (
	ErrUnsigned  = errors.New("the callback is not signed")
	ErrMalformed = errors.New("the signature header is malformed")
	ErrExpired   = errors.New("the signature's timestamp is outside the tolerance")
	ErrMismatch  = errors.New("no signature matches")
	ErrNoSecret  = errors.New("no callback secret is configured")
)

// maxHeader bounds the header a verifier parses, so a huge one costs
// nothing; it has room for dozens of signatures.
const maxHeader = 4096

// Sign returns the header value for body, signed at t with each secret
// (one v1 value per secret, in order).
func Sign(t time.Time, body []byte, secrets ...[]byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		b.WriteString(",v1=" + hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

// mac is HMAC-SHA256 of "<ts>.<body>" under secret.
func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// parsed is a signature header: its timestamp and its v1 signatures.
type parsed struct {
	ts   string
	unix int64
	sigs [][]byte
}

// parse reads a header; keys other than t and v1 are ignored (a later
// scheme may add its own next to v1).
func parse(header string) (parsed, error) {
	if strings.TrimSpace(header) == "" {
		return parsed{}, fmt.Errorf("%w: send the %s header (t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">)", ErrUnsigned, Header)
	}
	if len(header) > maxHeader {
		return parsed{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(header), maxHeader)
	}
	var p parsed
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return parsed{}, fmt.Errorf("%w: %q is not key=value", ErrMalformed, truncate(part))
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || p.ts != "" || n <= 0 {
				return parsed{}, fmt.Errorf("%w: t must appear once, as unix seconds, got %q", ErrMalformed, truncate(v))
			}
			p.ts, p.unix = v, n
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return parsed{}, fmt.Errorf("%w: v1 must be 64 hex digits, got %q", ErrMalformed, truncate(v))
			}
			p.sigs = append(p.sigs, sig)
		}
	}
	if p.ts == "" || len(p.sigs) == 0 {
		return parsed{}, fmt.Errorf("%w: it needs t= and at least one v1=", ErrMalformed)
	}
	return p, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Verifier checks callbacks against the secrets of a Keyring.
type Verifier struct {
	Keys *Keyring
	// Tolerance is how far the signed timestamp may be from the time of
	// the check, either way (default DefaultTolerance).
	Tolerance time.Duration
}

// Verify checks header against body for provider at time at: the
// timestamp within the tolerance, and a v1 signature made with one of the
// provider's secrets. It returns nil, or an error wrapping ErrUnsigned,
// ErrMalformed, ErrExpired, ErrMismatch or ErrNoSecret.
func (v Verifier) Verify(header string, body []byte, provider string, at time.Time) error {
	p, err := parse(header)
	if err != nil {
		return err
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	if d := at.Sub(time.Unix(p.unix, 0)); d > tol || d < -tol {
		return fmt.Errorf("%w: signed at %s, checked at %s, tolerance %s: sign every callback when it is sent",
			ErrExpired, time.Unix(p.unix, 0).UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339), tol)
	}
	v.Keys.reload() // secrets added or removed since (a rotation)
	secrets := v.Keys.Secrets(provider)
	if len(secrets) == 0 {
		return fmt.Errorf("%w for provider %q", ErrNoSecret, provider)
	}
	if !matches(secrets, p, body) {
		// Where the secrets live is not said: the caller may be anyone.
		return fmt.Errorf("%w: the signature is not the HMAC-SHA256 of \"t.body\" with a callback secret of provider %q",
			ErrMismatch, provider)
	}
	return nil
}

// matches reports whether a signature of p is one of the secrets' for
// body. Every pair is compared, so the time taken does not tell which
// secret or signature came close.
func matches(secrets [][]byte, p parsed, body []byte) bool {
	found := false
	for _, s := range secrets {
		want := mac(s, p.ts, body)
		for _, sig := range p.sigs {
			if hmac.Equal(want, sig) {
				found = true
			}
		}
	}
	return found
}

// VerifyCallback is Verify for a payment callback body, whose provider
// field chooses the secrets. A body that is not JSON is checked against
// the default secrets (and refused later as malformed if it is signed).
func (v Verifier) VerifyCallback(header string, body []byte, at time.Time) error {
	return v.Verify(header, body, ProviderOf(body), at)
}

// ProviderOf is the provider field of a callback body, or "" if it has none.
func ProviderOf(body []byte) string {
	var b struct {
		Provider string `json:"provider"`
	}
	_ = json.Unmarshal(body, &b)
	return b.Provider
}

// Signer signs callbacks with the secrets of a Keyring: the Go client and
// the CLI use it.
type Signer struct {
	Keys *Keyring
}

// SignCallback signs body at t with every secret of the body's provider.
func (s Signer) SignCallback(body []byte, at time.Time) (string, error) {
	provider := ProviderOf(body)
	secrets := s.Keys.Secrets(provider)
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w for provider %q: give the service's callback secret (ordo serve writes it to <data>/secrets/callback-default)", ErrNoSecret, provider)
	}
	return Sign(at, body, secrets...), nil
}
