package commands

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotStockWriter: this instance may not write stock now — it does not
// hold the writer's lease, or lost it while the command waited or was being
// decided. Nothing was appended for the command; resend it with the same
// command ID and the current writer decides it.
var ErrNotStockWriter = errors.New("this instance is not the stock writer now (its writer lease was lost or not yet taken); resend with the same command ID")

// term is a span of time during which a StockService may write stock:
// until ctx ends, and never past validUntil (when set). Every new term
// has a new gen, so lanes know their cached stock predates it.
type term struct {
	ctx        context.Context
	validUntil func() time.Time // nil: no deadline
	gen        uint64
	end        context.CancelFunc
}

// unfenced is the term of a service without StockOptions.Fenced: forever.
var unfenced = &term{ctx: context.Background(), end: func() {}}

// over reports whether the term has ended: its writes must stop.
func (t *term) over() bool {
	return t.ctx.Err() != nil || (t.validUntil != nil && !time.Now().Before(t.validUntil()))
}

// attempt is the context of one decide-and-append: it ends with the term,
// at the term's validity, or after 30 s.
func (t *term) attempt() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
	if t.validUntil == nil {
		return ctx, cancel
	}
	dctx, dcancel := context.WithDeadline(ctx, t.validUntil())
	return dctx, func() { dcancel(); cancel() }
}

// fenceErr is the error of a batch that failed while the term ended.
func fenceErr(err error) error {
	if errors.Is(err, ErrNotStockWriter) {
		return err
	}
	return fmt.Errorf("%w (%w)", ErrNotStockWriter, err)
}

// beforeDeadline returns ctx's error, or a deadline error once ctx's
// deadline has passed even if its timer has not fired yet: a process
// resuming from a pause (SIGSTOP, a long GC, a frozen VM) runs on before
// the runtime notices the deadline, and must not start an append then.
func beforeDeadline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// WriteWhile lets a StockService with StockOptions.Fenced write stock
// until ctx ends or validUntil (when not nil) has passed, whichever comes
// first, and until the returned end is called. It is how the holder of the
// writer lease fences its writes: ctx ends when the lease is lost, and
// validUntil is the lease's last confirmed validity, so no append starts —
// and no conflict is retried — once another instance could hold the lease.
// Commands queued or being decided when the term ends are answered with
// ErrNotStockWriter and nothing more is appended for them. A new term
// reloads every SKU from the store before deciding, since another writer
// may have appended meanwhile. Terms do not overlap: WriteWhile ends the
// previous one. Without StockOptions.Fenced the service writes anyway,
// and WriteWhile does nothing.
func (s *StockService) WriteWhile(ctx context.Context, validUntil func() time.Time) (end func()) {
	if !s.opts.Fenced {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.gen++
	t := &term{ctx: ctx, validUntil: validUntil, gen: s.gen, end: cancel}
	s.mu.Unlock()
	if prev := s.term.Swap(t); prev != nil {
		prev.end()
	}
	return func() {
		s.term.CompareAndSwap(t, nil)
		cancel()
	}
}
