package domain

import "strings"

// Order IDs are UUIDs, and one order has one ID: its canonical text form,
// the 8-4-4-4-12 hex form in lower case. It names the order's stream
// (order-<id>), its NATS subjects and its URLs, so two spellings of one
// UUID would be two orders. RFC 9562 makes UUIDs case-insensitive on
// input: DecodeCommand, DecodePaymentCallback and every entry point
// (NormalizeOrderID) turn a UUID in upper or mixed case into the canonical
// form before anything else sees it, and validation refuses any other form,
// so no second spelling can reach a stream.

// NormalizeOrderID returns the canonical form of an order ID (a UUID in
// lower case) and true, or id unchanged and false when id is not a UUID in
// any case.
func NormalizeOrderID(id string) (string, bool) {
	if !IsUUID(id) {
		return id, false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c >= 'A' && c <= 'F' {
			return strings.ToLower(id), true
		}
	}
	return id, true
}

// IsCanonicalOrderID reports whether id is a UUID in canonical (lower-case)
// text form, the only form an order ID takes in commands, events and
// streams.
func IsCanonicalOrderID(id string) bool {
	n, ok := NormalizeOrderID(id)
	return ok && n == id
}

// IsUUID reports whether s is a UUID in 8-4-4-4-12 hex form, in any case.
func IsUUID(s string) bool {
	if len(s) != uuidTextSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// checkOrderID requires the canonical form, which is safe in stream names,
// NATS subjects and URLs alike.
func checkOrderID(id string) error {
	n, ok := NormalizeOrderID(id)
	switch {
	case !ok:
		return invalid("order_id", "must be a UUID such as 0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a, got %q", truncate(id))
	case n != id:
		return invalid("order_id", "must be a UUID in lower case: %q is written %q", id, n)
	}
	return nil
}

// addressed is a command that can be addressed to another spelling of its
// order ID; DecodeCommand uses it to put the canonical one in.
type addressed interface {
	withOrder(id string) Command
}

func (c PlaceOrder) withOrder(id string) Command        { c.Order = id; return c }
func (c MarkStockReserved) withOrder(id string) Command { c.Order = id; return c }
func (c MarkStockRejected) withOrder(id string) Command { c.Order = id; return c }
func (c ConfirmPayment) withOrder(id string) Command    { c.Order = id; return c }
func (c FailPayment) withOrder(id string) Command       { c.Order = id; return c }
func (c CancelOrder) withOrder(id string) Command       { c.Order = id; return c }
func (c ShipOrder) withOrder(id string) Command         { c.Order = id; return c }
func (c ConfirmDelivery) withOrder(id string) Command   { c.Order = id; return c }
func (c CompleteOrder) withOrder(id string) Command     { c.Order = id; return c }
func (c RequestRefund) withOrder(id string) Command     { c.Order = id; return c }
func (c CompleteRefund) withOrder(id string) Command    { c.Order = id; return c }
func (c RejectRefund) withOrder(id string) Command      { c.Order = id; return c }
func (c ExpirePayment) withOrder(id string) Command     { c.Order = id; return c }

// canonicalCommand returns cmd addressed to the canonical form of its
// order ID, when the ID is a UUID in another case.
func canonicalCommand(cmd Command) Command {
	id := cmd.OrderID()
	n, ok := NormalizeOrderID(id)
	if !ok || n == id {
		return cmd
	}
	if a, ok := cmd.(addressed); ok {
		return a.withOrder(n)
	}
	return cmd
}
