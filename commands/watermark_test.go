package commands

import "testing"

// TestWatermark: the position handed to the checkpoint never passes an
// event still being handled, whatever order events finish in, and bare
// checkpoint positions advance it once everything before them is done.
func TestWatermark(t *testing.T) {
	type op struct {
		kind string // "start" (pos), "done" (the n-th started), "skip" (pos)
		arg  uint64
		want uint64 // position() after the op
	}
	tests := []struct {
		name string
		from uint64
		ops  []op
	}{
		{"nothing started", 7, []op{{"skip", 5, 7}}}, // never goes back
		{"in order", 0, []op{{"start", 10, 0}, {"start", 20, 0}, {"done", 0, 10}, {"done", 1, 20}}},
		{"later finishes first", 0, []op{{"start", 10, 0}, {"start", 20, 0}, {"start", 30, 0},
			{"done", 2, 0}, {"done", 1, 0}, {"done", 0, 30}}},
		{"a gap holds it", 5, []op{{"start", 10, 5}, {"start", 20, 5}, {"done", 1, 5}, {"start", 40, 5}, {"done", 2, 5}, {"done", 0, 40}}},
		{"skip waits for what is before it", 0, []op{{"start", 10, 0}, {"skip", 15, 0}, {"done", 0, 15}, {"skip", 25, 25}}},
		{"skip alone", 3, []op{{"skip", 9, 9}, {"skip", 12, 12}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWatermark(tt.from)
			var seqs []uint64
			for i, o := range tt.ops {
				switch o.kind {
				case "start":
					seqs = append(seqs, w.start(o.arg))
				case "done":
					w.done(seqs[o.arg])
				case "skip":
					w.skip(o.arg)
				}
				if got := w.position(); got != o.want {
					t.Fatalf("after op %d (%s %d): position %d, want %d", i, o.kind, o.arg, got, o.want)
				}
			}
			if len(w.pending) != 0 && tt.ops[len(tt.ops)-1].kind != "start" {
				// Everything started was done: nothing may be kept.
				done := 0
				for _, o := range tt.ops {
					if o.kind == "done" {
						done++
					}
				}
				if done == len(seqs) {
					t.Fatalf("%d marks kept after everything was done", len(w.pending))
				}
			}
		})
	}
}
