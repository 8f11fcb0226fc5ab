package projections

// SetLoadChunks sets the chunk sizes of a rebuild's bulk load, so a test
// with a few dozen events can make every order span several chunks; the
// returned function restores them.
func SetLoadChunks(first, largest int) (restore func()) {
	f, m := firstLoadChunk, maxLoadChunk
	firstLoadChunk, maxLoadChunk = first, largest
	return func() { firstLoadChunk, maxLoadChunk = f, m }
}
