// Package gather collects a batch from a channel, for the writers that
// serve many callers or events with one durable write: the embedded
// store's group commit, the stock service's lanes and the read models'
// runner. Each decides how large a batch it
// expects and how long it waits; gather only takes from the channel.
package gather

import "time"

// Queued appends to batch what in holds now, without waiting, until batch
// holds limit items.
func Queued[T any](batch []T, in <-chan T, limit int) []T {
	for len(batch) < limit {
		select {
		case v := <-in:
			batch = append(batch, v)
		default:
			return batch
		}
	}
	return batch
}

// Until appends to batch what arrives on in until batch holds want items,
// timeout fires, or done is closed (a nil done never is).
func Until[T any](batch []T, in <-chan T, want int, timeout <-chan time.Time, done <-chan struct{}) []T {
	for len(batch) < want {
		select {
		case v := <-in:
			batch = append(batch, v)
		case <-timeout:
			return batch
		case <-done:
			return batch
		}
	}
	return batch
}
