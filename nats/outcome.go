package nats

import (
	"errors"
	"fmt"

	"github.com/ordo-dev/ordo/domain"
)

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
