package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/ordo-dev/ordo/domain"
)

// Fingerprint returns what makes a command the command it is, as 32
// lower-case hex digits: a hash of its order ID, its wire type and its
// body as the domain decodes and re-encodes it. Two sends of one command
// have the same fingerprint whatever their JSON spelling (key order,
// spacing, an optional field left out); a command with another order, type
// or content has another. Transports use it to tell a resend of a command
// from a different command reusing its command ID; it travels with the
// command (Request.Fingerprint) into the metadata of every event the
// command appends, so the order itself can tell them apart for ever.
//
// The request must decode and address the order it names; otherwise the
// error is the *domain.Error Execute would answer with.
func Fingerprint(req Request) (string, error) {
	fp, _, err := FingerprintCommand(req)
	return fp, err
}

// FingerprintCommand is Fingerprint that also returns the command it
// decoded, for Request.Decoded.
func FingerprintCommand(req Request) (string, domain.Command, error) {
	cmd, err := parseRequest(req)
	if err != nil {
		return "", nil, err
	}
	fp, err := fingerprintOf(req.CommandType, cmd)
	return fp, cmd, err
}

// fingerprintOf hashes the canonical form of a decoded command.
//
// A payment callback is the provider's report of one payment: its command
// ID is derived from the order, provider, payment ID and status, and what
// else may vary between two honest reports of that payment is the failure
// reason, free text some providers reword on every resend. It is left out,
// so only a report with other money in it counts as a different command.
func fingerprintOf(commandType string, cmd domain.Command) (string, error) {
	if fail, ok := cmd.(domain.FailPayment); ok && commandType == domain.CmdPaymentCallback {
		fail.Reason = ""
		cmd = fail
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", commandType, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "ordo-command/1\n%s\n%s\n", cmd.OrderID(), commandType)
	h.Write(body)
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16]), nil
}

// reusedError refuses a command whose command ID already names another
// command of the same order.
func reusedError(commandID string) *domain.Error {
	return &domain.Error{Code: domain.CodeCommandIDReused, Field: "command_id", Message: fmt.Sprintf(
		"command ID %q already names a different command of this order (another type or content); "+
			"a command ID names one command: send this one under a new command ID", commandID)}
}
