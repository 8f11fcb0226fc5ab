package nats

import "strings"

// Subjects of the commands, dead letters and queries; public API for
// non-Go clients.
const (
	SubjectCommands      = "ordo.cmd.>"        // what the command stream stores and the workers consume
	SubjectCommandPrefix = "ordo.cmd.order."   // + <order-id>.<CommandType>
	SubjectDeadPrefix    = "ordo.dead."        // + the original subject
	SubjectOrderQuery    = "ordo.query.order." // + <order-id>; core request-reply, not captured by a stream
)

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
