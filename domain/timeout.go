package domain

import "time"

// ExpirePayment is sent by the payment timer when an order's time to pay
// has run out. It cancels an order still awaiting payment (whose stock the
// saga then releases). In any other state — paid, cancelled, shipped — the
// lifecycle refuses it (illegal_transition): the timer lost the race and
// nothing changes, so a payment and its timeout never both take effect.
type ExpirePayment struct {
	Order    string    `json:"order_id"`
	Deadline time.Time `json:"deadline"`
}

func (ExpirePayment) CommandType() string { return CmdExpirePayment }

func (c ExpirePayment) OrderID() string { return c.Order }

func (c ExpirePayment) Validate() error {
	if err := checkOrderID(c.Order); err != nil {
		return err
	}
	if c.Deadline.IsZero() {
		return invalid("deadline", "is required (RFC 3339)")
	}
	return nil
}
