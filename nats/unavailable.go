package nats

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
)

// This file is the workers' answer to an event store that cannot be
// reached (an outage of any length): a command that failed only for that
// reason is never dead-lettered, since a retry would apply it. Its
// requester is answered "unavailable" at once (resending with the same
// command ID is safe), and the command stays on its lane, in progress,
// tried again after a pause that grows to unavailableMaxPause, until the
// store answers (then it is applied and answered as usual) or the worker
// stops (then it is released for redelivery after releaseDelay).
// Redeliveries would count towards MaxDeliver and end in a dead letter
// after a few seconds; holding the message does not, and keeps the
// order's commands in order.

// unavailableMaxPause bounds the pause between tries, so a command is
// applied within about that much of the store's return.
const unavailableMaxPause = 250 * time.Millisecond

// releaseDelay is when a command released by a stopping worker is
// delivered again (to another worker, or after the restart).
const releaseDelay = 2 * time.Second

// storeUnavailable reports whether out is a retry because the event store
// could not be reached (the executor's code unavailable), as opposed to
// another failure, which is retried a bounded number of times.
func storeUnavailable(out Outcome) bool {
	return out.Retry && out.Error != nil && out.Error.Code == string(domain.CodeUnavailable)
}

// untilAvailable answers the requester with out, then executes cmd again
// until the outcome is not "store unavailable" and returns it. It returns
// false when the worker stopped first: msg is then released for
// redelivery and must not be touched again.
func (w *Worker) untilAvailable(ctx context.Context, l *lane, msg jetstream.Msg, cmd Command, replyTo string, out Outcome) (Outcome, bool) {
	w.progress.waiting.Add(1)
	defer w.progress.waiting.Add(-1)
	first := out
	first.Retry = false
	body, _ := json.Marshal(first)
	w.reply(ctx, replyTo, first, body)
	w.observe(cmd.Type, cmd.Accepted, first)
	// The commands queued behind this one on its lane wait for the store
	// too: each requester hears so after the next try that fails, not when
	// its request times out.
	answered := map[jetstream.Msg]bool{}
	progress := max(w.cfg.AckWait/3, 100*time.Millisecond)
	lastProgress := time.Now()
	pause := 50 * time.Millisecond
	timer := time.NewTimer(pause)
	defer timer.Stop()
	for storeUnavailable(out) {
		select {
		case <-w.stopping:
			// Not at once: the consumer is still draining, and would get
			// the message back and spend its deliveries.
			w.nak(msg, releaseDelay)
			return out, false
		case <-timer.C:
		}
		if time.Since(lastProgress) >= progress {
			// Tells JetStream the command is being worked on, so it is not
			// redelivered to another lane after AckWait.
			_ = msg.InProgress()
			lastProgress = time.Now()
		}
		out = w.execute(ctx, cmd)
		if storeUnavailable(out) {
			for _, m := range l.queued() {
				if !answered[m] {
					answered[m] = true
					w.answerQueued(m)
				}
			}
		}
		pause = min(2*pause, unavailableMaxPause)
		timer.Reset(pause)
	}
	return out, true
}

// answerQueued answers the requester of a command that waits on a stalled
// lane: it is queued, not refused, and is applied in its turn once the
// store answers; a resend with the same command ID learns its outcome then.
func (w *Worker) answerQueued(msg jetstream.Msg) {
	h := msg.Headers()
	replyTo := h.Get(HeaderReplyTo)
	if replyTo == "" {
		return
	}
	orderID, typ, _ := parseSubject(msg.Subject())
	out := Outcome{CommandID: h.Get(HeaderCommandID), OrderID: orderID, Events: []string{}, Error: &ErrorBody{
		Code: string(domain.CodeUnavailable),
		Message: "the event store cannot be reached; the command is queued behind another of its lane and will be applied " +
			"when the store answers again; resend it with the same command ID later to learn its outcome"}}
	body, _ := json.Marshal(out)
	w.reply(extractTrace(context.Background(), h), replyTo, out, body)
	w.observe(typ, time.Time{}, out) // its latency is counted with its outcome
}
