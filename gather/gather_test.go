package gather_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/gather"
)

func TestQueued(t *testing.T) {
	for _, tc := range []struct {
		name   string
		queued int
		limit  int
		want   []int
	}{
		{"empty", 0, 4, []int{0}},
		{"all queued", 2, 4, []int{0, 1, 2}},
		{"up to the limit", 5, 3, []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make(chan int, 8)
			for i := range tc.queued {
				in <- i + 1
			}
			if got := gather.Queued([]int{0}, in, tc.limit); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if left := len(in); left != tc.queued-(len(tc.want)-1) {
				t.Errorf("left %d in the channel, want %d", left, tc.queued-(len(tc.want)-1))
			}
		})
	}
}

func TestUntil(t *testing.T) {
	in := make(chan int, 8)
	in <- 1
	in <- 2
	in <- 3
	if got := gather.Until(nil, in, 2, nil, nil); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("want reached: got %v, want [1 2]", got)
	}
	expired := make(chan time.Time, 1)
	expired <- time.Time{}
	<-in // empty the channel: only the timeout can end the wait
	if got := gather.Until([]int{9}, in, 5, expired, nil); !slices.Equal(got, []int{9}) {
		t.Errorf("timed out: got %v, want [9]", got)
	}
	done := make(chan struct{})
	close(done)
	if got := gather.Until([]int{9}, in, 5, nil, done); !slices.Equal(got, []int{9}) {
		t.Errorf("done: got %v, want [9]", got)
	}
}
