package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
)

// The outcome bucket is also the ledger of command IDs: before a worker
// executes a command it records there, under the command ID, which command
// the ID names (its fingerprint, order and type). A command ID is new,
// names this very command (a resend: answered with its first outcome, or
// evaluated again while it has none), or names another command (refused
// with command_id_reused, for any order). The record becomes the command's
// outcome once it has a final one. Transient failures (unavailable,
// conflict) leave the record pending, so a resend is evaluated, never
// answered with the failure.
//
// Within one order the events keep the fingerprint too, so the order tells
// a reuse from a resend even after the bucket's records expire
// (Config.OutcomeTTL).
//
// A command ID its sender minted for this very command (header
// Ordo-Command-Id-Fresh, set by the Go client when the caller gave no ID)
// cannot name another command yet: it skips the lookup, a round trip to
// the bucket, and its outcome is recorded only if the ID still has no
// record, so a later command reusing the ID is refused like any other.

// record is what the outcome bucket keeps under a command ID.
type record struct {
	Outcome
	// Fingerprint is the command's content (Executor.Fingerprint); empty in
	// outcomes stored before fingerprints were kept.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Type is the command's type (the subject's last token).
	Type string `json:"command_type,omitempty"`
	// Pending marks a command that was taken up but has no final outcome
	// yet: it may still be queued, in flight, or have failed for now.
	Pending bool `json:"pending,omitempty"`
}

// claim is what the ledger said about a command about to be executed.
type claim struct {
	// held: this worker may record the command's final outcome, in place
	// of the record at revision (0: the ID has no record, a fresh ID), so
	// the first final outcome stays.
	held     bool
	revision uint64
	// fingerprint and commandType of the command, for its final record.
	fingerprint, commandType string
	// answer, when set, is the reply instead of executing the command: its
	// first outcome (a resend), or command_id_reused.
	answer *Outcome
}

// claim records that cmd.ID names cmd, or finds what the ID names already.
// An error means the bucket did not answer; the command is retried later.
func (w *Worker) claim(ctx context.Context, cmd Command) (claim, error) {
	if cmd.FreshID {
		return claim{held: true, fingerprint: cmd.Fingerprint, commandType: cmd.Type}, nil
	}
	pending, err := json.Marshal(record{Outcome: Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{}},
		Fingerprint: cmd.Fingerprint, Type: cmd.Type, Pending: true})
	if err != nil {
		return claim{}, err
	}
	// Twice: a record that expires between Create and Get is created anew.
	for range 2 {
		rev, err := w.kv.Create(ctx, cmd.ID, pending)
		if err == nil {
			return claim{held: true, revision: rev, fingerprint: cmd.Fingerprint, commandType: cmd.Type}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return claim{}, fmt.Errorf("record command ID %s: %w", cmd.ID, err)
		}
		e, err := w.kv.Get(ctx, cmd.ID)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return claim{}, fmt.Errorf("look up command ID %s: %w", cmd.ID, err)
		}
		return claimOf(cmd, e), nil
	}
	return claim{}, fmt.Errorf("record command ID %s: its record kept changing", cmd.ID)
}

// claimOf judges cmd against the record its command ID already has.
func claimOf(cmd Command, e jetstream.KeyValueEntry) claim {
	var prior record
	if err := json.Unmarshal(e.Value(), &prior); err != nil {
		// Not written by a worker: the ID cannot be shown to name this command.
		return claim{answer: reused(cmd, "an unreadable record")}
	}
	if why := prior.differs(cmd); why != "" {
		return claim{answer: reused(cmd, why)}
	}
	if prior.Pending {
		return claim{held: true, revision: e.Revision(), fingerprint: cmd.Fingerprint, commandType: cmd.Type}
	}
	first := prior.Outcome
	first.CommandID, first.Duplicate = cmd.ID, true
	if first.Events == nil {
		first.Events = []string{}
	}
	return claim{answer: &first}
}

// differs says how the recorded command differs from cmd, or "" if it is
// the same command. Outcomes stored before fingerprints were kept can only
// be compared by order.
func (r record) differs(cmd Command) string {
	switch {
	case !strings.EqualFold(r.OrderID, cmd.OrderID):
		return "a command for another order"
	case r.Fingerprint == "":
		return ""
	case r.Type != "" && r.Type != cmd.Type:
		return "a " + r.Type + " command"
	case r.Fingerprint != cmd.Fingerprint:
		return "a " + cmd.Type + " command with other content"
	}
	return ""
}

// reused is the refusal of a command whose ID names another command.
func reused(cmd Command, what string) *Outcome {
	return &Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{}, Error: &ErrorBody{
		Code: string(domain.CodeCommandIDReused), Field: "command_id", Message: fmt.Sprintf(
			"command ID %q already names %s; a command ID names one command: send this one under a new command ID", cmd.ID, what)}}
}

// unclaim takes back a claim the order proved wrong: its events show the
// command ID was applied to another command (after the bucket had
// forgotten it). The next command under the ID claims it afresh, and the
// order decides again. A record that changed since is left alone.
func (w *Worker) unclaim(ctx context.Context, commandID, orderID string, cl claim) {
	if cl.revision == 0 {
		return // a fresh ID: nothing was recorded
	}
	err := w.kv.Delete(ctx, commandID, jetstream.LastRevision(cl.revision))
	if err != nil && !casFailed(err) {
		commandLog(w.log, ctx, commandID, orderID).Warn("take back the claim of a reused command ID", "err", err)
	}
}

// final reports whether an outcome is the command's answer for good, to
// be kept under its command ID and given to every resend. A transient
// failure is not: the command was not applied, and a resend must be
// evaluated again.
func final(out Outcome) bool {
	if out.Error == nil {
		return true
	}
	switch domain.Code(out.Error.Code) {
	case domain.CodeUnavailable, domain.CodeConflict, domain.CodeCommandIDReused:
		return false
	}
	return true
}

// casFailed reports whether storing an outcome failed because the record
// had changed since it was read: another worker stored the command's
// outcome first, and that one stays.
func casFailed(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
