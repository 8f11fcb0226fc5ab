package logbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ordo-dev/ordo/logbuf"
)

func TestConcurrentWritersAndTail(t *testing.T) {
	var b logbuf.Buffer
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
			}
		}()
	}
	wg.Wait()
	if got := b.Lines(); got != 800 {
		t.Fatalf("got %d lines, want 800", got)
	}
	for _, l := range strings.Split(b.String(), "\n")[:800] {
		if !strings.HasPrefix(l, "writer ") {
			t.Fatalf("interleaved line %q", l)
		}
	}
	if tail := b.Tail(3); strings.Count(tail, "\n") != 2 || !strings.HasSuffix(b.String(), tail+"\n") {
		t.Fatalf("Tail(3) = %q, want the last three lines", tail)
	}
}
