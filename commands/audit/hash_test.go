package audit

import (
	"hash/fnv"
	"testing"
)

// TestStreamHashIsFNV1a: the written-out hash spreads streams exactly as
// hash/fnv's FNV-1a does, so which verifier owns a stream is unchanged.
func TestStreamHashIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "a", "order-0b9c3c36-6f0e-4a53-9d0b-3f7c1c2c8e11", "sku-BOOK-1", "$$order-x", "ü€"} {
		h := fnv.New32a()
		h.Write([]byte(s))
		if got, want := streamHash(s), h.Sum32(); got != want {
			t.Errorf("streamHash(%q) = %d, want %d", s, got, want)
		}
	}
}
