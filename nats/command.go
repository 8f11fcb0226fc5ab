package nats

import "time"

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
