package projections

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// StateAge counts the orders in one unfinished state, in total and by how
// long they have been in it.
type StateAge struct {
	State string
	Total int64
	// OlderThan[i] is how many have been in the state longer than the
	// i-th duration given to StateAges.
	OlderThan []int64
}

// unfinishedStates are the states an order can be stuck in: every state
// but the final ones (completed, cancelled, refunded).
var unfinishedStates = []string{"placed", "awaiting_payment", "paid", "shipped", "delivered"}

// StateAges counts the orders of every unfinished state and, for each of
// ages, those in it for longer (since state_since) as of now: one grouped
// query, at most one row per state, for metrics.
func (s *Store) StateAges(ctx context.Context, now time.Time, ages []time.Duration) ([]StateAge, error) {
	cols := make([]string, len(ages))
	args := make([]any, 0, len(ages)+len(unfinishedStates))
	for i, a := range ages {
		cols[i] = ", SUM(CASE WHEN state_since < ? THEN 1 ELSE 0 END)"
		args = append(args, formatTime(now.Add(-a)))
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(unfinishedStates)), ", ")
	for _, st := range unfinishedStates {
		args = append(args, st)
	}
	q := "SELECT state, COUNT(*)" + strings.Join(cols, "") + " FROM order_views WHERE state IN (" + marks + ") GROUP BY state"
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count orders by state and age: %w", err)
	}
	defer rows.Close()
	var out []StateAge
	for rows.Next() {
		sa := StateAge{OlderThan: make([]int64, len(ages))}
		dest := []any{&sa.State, &sa.Total}
		for i := range sa.OlderThan {
			dest = append(dest, &sa.OlderThan[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("count orders by state and age: %w", err)
		}
		out = append(out, sa)
	}
	return out, rows.Err()
}
