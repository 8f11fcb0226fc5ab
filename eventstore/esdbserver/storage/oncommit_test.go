package storage

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestOnCommitObservesGroupCommits: the writer tells Options.OnCommit about
// every group it commits, with the writes, events and bytes it carried.
func TestOnCommitObservesGroupCommits(t *testing.T) {
	var mu sync.Mutex
	var got []Commit
	s, err := Open(t.TempDir(), Options{OnCommit: func(c Commit) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := events(0, 3)
	evs[1].CustomMetadata = []byte(`{"m":1}`)
	want := 0
	for _, e := range evs {
		want += len(e.Data) + len(e.CustomMetadata)
	}
	if _, err := s.Append(context.Background(), "a", Expected{Kind: ExpectNoStream}, evs); err != nil {
		t.Fatal(err)
	}
	// A refused append is decided in a group too, and commits nothing.
	_, _ = s.Append(context.Background(), "a", Expected{Kind: ExpectNoStream}, events(3, 1))
	// OnCommit runs after the writers were answered: wait for it.
	var appends, committed, bytes int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		appends, committed, bytes = 0, 0, 0
		for _, c := range got {
			if c.Failed || c.Duration <= 0 {
				t.Errorf("commit %+v: want a successful commit that took some time", c)
			}
			appends, committed, bytes = appends+c.Appends, committed+c.Events, bytes+c.Bytes
		}
		mu.Unlock()
		if appends >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if appends != 2 || committed != 3 || bytes != want {
		t.Fatalf("observed %d writes, %d events, %d bytes; want 2 writes, 3 events, %d bytes", appends, committed, bytes, want)
	}
}
