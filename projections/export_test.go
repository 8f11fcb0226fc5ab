package projections

import (
	"context"
	"time"
)

// SetLoadChunks sets the chunk sizes of a rebuild's bulk load, so a test
// with a few dozen events can make every order span several chunks; the
// returned function restores them.
func SetLoadChunks(first, largest int) (restore func()) {
	f, m := firstLoadChunk, maxLoadChunk
	firstLoadChunk, maxLoadChunk = first, largest
	return func() { firstLoadChunk, maxLoadChunk = f, m }
}

// SetRetryPacing sets how soon a failing projection tries again, the
// longest pause between attempts, and how often it logs while it keeps
// failing; the returned function restores them.
func SetRetryPacing(first, longest, logEvery time.Duration) (restore func()) {
	f, m, l := retryFirst, retryMax, retryLogEvery
	retryFirst, retryMax, retryLogEvery = first, longest, logEvery
	return func() { retryFirst, retryMax, retryLogEvery = f, m, l }
}

// Load applies the history through h in bulk, as a rebuild does before
// it follows the subscription.
func Load(ctx context.Context, r *Runner, h History) error { return r.load(ctx, h) }

// StoredEvents is how many events the stored checkpoint says were applied.
func StoredEvents(ctx context.Context, s *Store) (int64, error) {
	st, _, err := s.state(ctx, Name)
	return st.Events, err
}
