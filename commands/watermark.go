package commands

import "sync"

// watermark tracks which events are done, so the checkpoint never passes an
// event still being handled while later ones (of other orders) finish first.
type watermark struct {
	mu      sync.Mutex
	base    uint64 // position everything up to which is done
	next    uint64 // sequence of the next started event
	first   uint64 // sequence of the oldest event not yet popped
	pending map[uint64]*mark
}

type mark struct {
	pos  uint64
	done bool
}

func newWatermark(from uint64) *watermark {
	return &watermark{base: from, pending: map[uint64]*mark{}}
}

// start registers an event at pos and returns its sequence number.
func (w *watermark) start(pos uint64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.next
	w.next++
	w.pending[seq] = &mark{pos: pos}
	return seq
}

// skip records a checkpoint position with nothing to do: it is done as
// soon as everything before it is.
func (w *watermark) skip(pos uint64) {
	seq := w.start(pos)
	w.done(seq)
}

// done marks an event finished and advances the base over the finished prefix.
func (w *watermark) done(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[seq].done = true
	for {
		m, ok := w.pending[w.first]
		if !ok || !m.done {
			return
		}
		w.base = max(w.base, m.pos)
		delete(w.pending, w.first)
		w.first++
	}
}

func (w *watermark) position() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.base
}
