package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
)

// Names of the JetStream resources and headers; public API for non-Go clients.
const (
	StreamCommands   = "ORDO_COMMANDS"        // commands, Limits retention
	StreamDeadLetter = "ORDO_DEADLETTER"      // commands that could not be processed, with the reason
	BucketOutcomes   = "ORDO_OUTCOMES"        // command ID -> outcome JSON
	ConsumerWorkers  = "ordo-command-workers" // durable pull consumer of the workers

	SubjectCommands      = "ordo.cmd.>"        // what the command stream stores and the workers consume
	SubjectCommandPrefix = "ordo.cmd.order."   // + <order-id>.<CommandType>
	SubjectDeadPrefix    = "ordo.dead."        // + the original subject
	SubjectOrderQuery    = "ordo.query.order." // + <order-id>; core request-reply, not captured by a stream

	HeaderMsgID     = "Nats-Msg-Id"
	HeaderCommandID = "Ordo-Command-Id"
	// HeaderCommandIDFresh "true" says the sender minted the command ID for
	// this command (it was never used before); see ledger.go.
	HeaderCommandIDFresh = "Ordo-Command-Id-Fresh"
	HeaderCommandType    = "Ordo-Command-Type"
	HeaderCorrelationID  = "Ordo-Correlation-Id"
	HeaderCausationID    = "Ordo-Causation-Id"
	HeaderReplyTo        = "Ordo-Reply-To"
	HeaderStatus         = "Ordo-Status"      // on replies: 200, or the error's status number
	HeaderDeadReason     = "Ordo-Dead-Reason" // on dead letters
	HeaderDeadCode       = "Ordo-Dead-Code"
)

// Config sizes the JetStream resources. The zero value is usable.
type Config struct {
	// DedupeWindow is how long JetStream drops a second publish with the
	// same Nats-Msg-Id (default 2m): a publish retried within one send,
	// which takes seconds. Senders give every send its own message ID;
	// resends of a command ID are judged by the workers (see ledger.go),
	// not dropped. JetStream keeps every message ID of the window in
	// memory, so a longer window costs memory at high rates.
	DedupeWindow time.Duration
	// MaxAge is how long commands stay in the stream (default 24h). It must
	// exceed the dedupe window: the dedupe map is rebuilt from stored
	// messages after a restart.
	MaxAge time.Duration
	// OutcomeTTL is how long outcomes stay retrievable by command ID
	// (default 7 days), and so how long a command ID reused for another
	// order is recognised (within one order, its events keep it for good).
	OutcomeTTL time.Duration
	// MaxPayload is the largest command body accepted (default 64 KiB).
	MaxPayload int
	// Replicas for the streams and bucket (default 1; use 3 on a cluster).
	Replicas int
}

func (c Config) withDefaults() Config {
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 2 * time.Minute
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.MaxAge <= c.DedupeWindow {
		c.MaxAge = 2 * c.DedupeWindow
	}
	if c.OutcomeTTL <= 0 {
		c.OutcomeTTL = 7 * 24 * time.Hour
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 64 << 10
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	return c
}

// EnsureStreams creates or updates the command stream, the dead-letter
// stream and the outcome bucket. It is idempotent.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	cfg = cfg.withDefaults()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamCommands,
		Description: "Ordo commands: durable before they are processed",
		Subjects:    []string{SubjectCommands},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.DedupeWindow,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		// Commands up to 16× the accepted size are stored so the workers can
		// answer them with payload_too_large and keep a dead letter; beyond
		// that JetStream refuses the publish itself.
		MaxMsgSize:        int32(16 * cfg.MaxPayload),
		AllowMsgSchedules: true,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", StreamCommands, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamDeadLetter,
		Description: "Ordo commands that could not be processed, with the reason",
		Subjects:    []string{SubjectDeadPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", StreamDeadLetter, err)
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketOutcomes,
		Description: "Ordo command outcomes by command ID",
		TTL:         cfg.OutcomeTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("create key-value bucket %s: %w", BucketOutcomes, err)
	}
	return nil
}

// outcomeSubject is where the outcome of a command is put in the outcome
// bucket: what KeyValue.Put publishes to for a bucket of this account
// without a JetStream domain, which is how EnsureStreams creates it. The
// workers publish there directly so they need not wait for the bucket's
// confirmation before taking the order's next command.
func outcomeSubject(commandID string) string {
	return "$KV." + BucketOutcomes + "." + commandID
}

// CommandSubject is the subject a command for orderID is published on.
func CommandSubject(orderID, commandType string) string {
	return SubjectCommandPrefix + orderID + "." + commandType
}

// parseSubject splits ordo.cmd.order.<id>.<type>.
func parseSubject(subject string) (orderID, commandType string, ok bool) {
	rest, found := strings.CutPrefix(subject, SubjectCommandPrefix)
	if !found {
		return "", "", false
	}
	orderID, commandType, found = strings.Cut(rest, ".")
	if !found || orderID == "" || commandType == "" || strings.Contains(commandType, ".") {
		return "", "", false
	}
	return orderID, commandType, true
}

// validCommandID accepts what is safe as a JetStream message ID and as a
// key-value key: 1 to 128 of letters, digits and - _ = .
func validCommandID(id string) bool {
	if id == "" || len(id) > 128 || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=' || r == '.') {
			return false
		}
	}
	return true
}

// Command is a command as the workers hand it to the executor.
type Command struct {
	ID            string
	Type          string
	OrderID       string
	CorrelationID string
	CausationID   string
	Body          []byte
	Delivery      int // 1 for the first delivery
	// Accepted is when JetStream stored the command (set by the workers).
	Accepted time.Time
	// Fingerprint identifies the command's content (Executor.Fingerprint);
	// the workers set it before Execute.
	Fingerprint string
	// FreshID says ID was minted for this command and never named another
	// one: Client.Send sets it when it mints the ID. The workers then skip
	// the command-ID lookup (see ledger.go). Set it yourself only for such
	// an ID.
	FreshID bool
	// Signature is a PaymentCallback's Ordo-Signature header: the
	// provider's signature of Body (see callbacksig). The workers refuse a
	// callback without a valid one.
	Signature string
}

// Outcome is the reply to a command, and what the outcome bucket keeps.
type Outcome struct {
	CommandID string   `json:"command_id"`
	OrderID   string   `json:"order_id"`
	Revision  int64    `json:"revision"`
	Position  uint64   `json:"position"`
	Events    []string `json:"events"`
	State     string   `json:"state,omitempty"`
	// Duplicate is true when the command had been applied before and this
	// is its first outcome again.
	Duplicate bool       `json:"duplicate,omitempty"`
	Error     *ErrorBody `json:"error,omitempty"`
	// Retry marks a transient failure: the message is redelivered and the
	// requester answered later. Never on the wire.
	Retry bool `json:"-"`
}

// ErrorBody is the error part of an outcome.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// CommandError is an outcome's error as a Go error. errors.Is matches the
// domain's sentinels by code: errors.Is(err, domain.ErrIllegalTransition).
type CommandError struct {
	Code    string
	Message string
	Field   string
}

func (e *CommandError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return e.Code + ": " + e.Message
}

// Is matches a *domain.Error with the same code.
func (e *CommandError) Is(target error) bool {
	var de *domain.Error
	return errors.As(target, &de) && string(de.Code) == e.Code
}

// badInput reports whether an error code means the command itself is wrong:
// such messages are answered, recorded as dead letters and never redelivered.
func badInput(code string) bool {
	switch domain.Code(code) {
	case domain.CodeInvalidCommand, domain.CodeUnknownCommand, domain.CodePayloadTooLarge, domain.CodeNotFound, domain.CodeInternal,
		domain.CodeCommandIDReused, domain.CodeUnauthenticated:
		return true
	}
	return false
}
