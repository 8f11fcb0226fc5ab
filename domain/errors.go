package domain

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes are public API: HTTP
// and NATS replies carry them, clients branch on them.
type Code string

// The error codes.
const (
	CodeInvalidCommand      Code = "invalid_command"      // a field is missing or wrong
	CodeUnknownCommand      Code = "unknown_command"      // no such command type
	CodeIllegalTransition   Code = "illegal_transition"   // the lifecycle does not allow the command now
	CodeAmountMismatch      Code = "amount_mismatch"      // a payment's amount or currency differs from the order total
	CodeRefundExceedsPaid   Code = "refund_exceeds_paid"  // refunds would exceed the money received
	CodeOutOfStock          Code = "out_of_stock"         // a SKU has less available stock than a reservation asks for
	CodeReservationConflict Code = "reservation_conflict" // a reservation does not match its order's lines, or the order holds another one of the SKU
	CodeSagaOnly            Code = "saga_only"            // only the stock saga sends this while it manages stock (no --manual-stock)
	CodeNotFound            Code = "not_found"            // the order (or refund, stocked SKU, HTTP endpoint, rebuild to follow) does not exist
	CodeConflict            Code = "conflict"             // concurrent writers kept winning, or (admin) a rebuild already runs; retry
	CodeCommandIDReused     Code = "command_id_reused"    // the command ID already names another command (other order, type or content)
	CodeMethodNotAllowed    Code = "method_not_allowed"   // the HTTP endpoint exists but not for this method (Allow lists those it takes)
	CodePayloadTooLarge     Code = "payload_too_large"    // the command is larger than allowed
	CodeUnauthenticated     Code = "unauthenticated"      // a payment callback's signature or an admin request's token is missing, wrong or expired
	CodePermissionDenied    Code = "permission_denied"    // the NATS user's role may not use a subject the request needs; ask for another role
	CodeUnavailable         Code = "unavailable"          // a dependency is down; retry later
	CodeInternal            Code = "internal"             // a bug; the message is generic, details are logged
)

// codeInfo is the one table that maps codes to transport statuses: the HTTP
// status, and the status number NATS replies carry so NATS clients can branch
// without parsing JSON. Plain numbers keep net/http out of the domain.
var codeInfo = map[Code]struct {
	http int
	nats int
}{
	CodeInvalidCommand:      {400, 400},
	CodeUnknownCommand:      {400, 400},
	CodeIllegalTransition:   {409, 409},
	CodeAmountMismatch:      {422, 422},
	CodeRefundExceedsPaid:   {422, 422},
	CodeOutOfStock:          {409, 409},
	CodeReservationConflict: {409, 409},
	CodeSagaOnly:            {403, 403},
	CodeNotFound:            {404, 404},
	CodeConflict:            {409, 409},
	CodeCommandIDReused:     {409, 409},
	CodeMethodNotAllowed:    {405, 405},
	CodePayloadTooLarge:     {413, 413},
	CodeUnauthenticated:     {401, 401},
	CodePermissionDenied:    {403, 403},
	CodeUnavailable:         {503, 503},
	CodeInternal:            {500, 500},
}

// Codes lists every error code, for documentation and tests.
func Codes() []Code {
	return []Code{CodeInvalidCommand, CodeUnknownCommand, CodeIllegalTransition, CodeAmountMismatch,
		CodeRefundExceedsPaid, CodeOutOfStock, CodeReservationConflict, CodeSagaOnly, CodeNotFound, CodeConflict,
		CodeCommandIDReused, CodeMethodNotAllowed, CodePayloadTooLarge, CodeUnauthenticated, CodePermissionDenied, CodeUnavailable, CodeInternal}
}

// HTTPStatus is the HTTP status for a code; unknown codes map to 500.
func HTTPStatus(c Code) int {
	if i, ok := codeInfo[c]; ok {
		return i.http
	}
	return 500
}

// NATSStatus is the status number NATS replies carry for a code.
func NATSStatus(c Code) int {
	if i, ok := codeInfo[c]; ok {
		return i.nats
	}
	return 500
}

// Error is a rejected command or a failed lookup, with a stable code and a
// message for humans.
type Error struct {
	Code    Code
	Message string
	Field   string // for invalid_command: the offending field, dotted path
	State   State  // for illegal_transition: the order's state
	Command string // for illegal_transition: the attempted command
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is makes errors.Is(err, ErrNotFound) and friends match by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Field == ""
}

// Sentinels for errors.Is; they match any *Error with the same code.
var (
	ErrInvalidCommand    = &Error{Code: CodeInvalidCommand}
	ErrUnknownCommand    = &Error{Code: CodeUnknownCommand}
	ErrIllegalTransition = &Error{Code: CodeIllegalTransition}
	ErrAmountMismatch    = &Error{Code: CodeAmountMismatch}
	ErrRefundExceedsPaid = &Error{Code: CodeRefundExceedsPaid}
	ErrOutOfStock        = &Error{Code: CodeOutOfStock}
	// ErrReservationConflict matches CodeReservationConflict.
	ErrReservationConflict = &Error{Code: CodeReservationConflict}
	// ErrSagaOnly matches CodeSagaOnly.
	ErrSagaOnly        = &Error{Code: CodeSagaOnly}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrConflict        = &Error{Code: CodeConflict}
	ErrCommandIDReused = &Error{Code: CodeCommandIDReused}
	ErrPayloadTooLarge = &Error{Code: CodePayloadTooLarge}
	// ErrUnauthenticated matches CodeUnauthenticated.
	ErrUnauthenticated = &Error{Code: CodeUnauthenticated}
	// ErrPermissionDenied matches CodePermissionDenied.
	ErrPermissionDenied = &Error{Code: CodePermissionDenied}
	ErrUnavailable      = &Error{Code: CodeUnavailable}
	ErrInternal         = &Error{Code: CodeInternal}
)

// CodeOf returns the code of a domain error anywhere in err's chain, and
// CodeInternal for anything else.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidCommand, Field: field, Message: fmt.Sprintf(format, args...)}
}
