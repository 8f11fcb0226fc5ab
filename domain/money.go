package domain

import (
	"fmt"
	"math"
)

// Money is an amount in minor units (cents, pence, yen) of an ISO 4217
// currency. Floats never hold money.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func (m Money) String() string { return fmt.Sprintf("%d %s", m.Amount, m.Currency) }

// validCurrency accepts ISO 4217 alphabetic codes: three upper-case letters.
// The list of assigned codes changes over time, so the shape is checked, not
// membership.
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// checkPositive validates a money field that must be a positive amount.
func checkPositive(field string, m Money) error {
	if !validCurrency(m.Currency) {
		return invalid(field+".currency", "must be an ISO 4217 code such as EUR, got %q", m.Currency)
	}
	if m.Amount <= 0 {
		return invalid(field+".amount", "must be a positive number of minor units, got %d", m.Amount)
	}
	return nil
}

// mulAdd returns acc + q*p, or false when it would overflow int64.
func mulAdd(acc, q, p int64) (int64, bool) {
	if q != 0 && p > math.MaxInt64/q {
		return 0, false
	}
	v := q * p
	if acc > math.MaxInt64-v {
		return 0, false
	}
	return acc + v, true
}
