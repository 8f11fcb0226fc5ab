package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordo-dev/ordo/domain"
)

// Executor runs commands for the workers; the composition implements it
// over the commands package.
type Executor interface {
	// Fingerprint identifies the command's content (commands.Fingerprint):
	// every send of one command has the same, a different command reusing
	// its command ID another. A command that does not decode, or does not
	// address its subject's order, gets the *domain.Error to answer with.
	Fingerprint(cmd Command) (string, error)
	// Execute runs a command to its outcome.
	Execute(ctx context.Context, cmd Command) Outcome
}

// Preparer is an Executor that reads a command once for both its
// fingerprint and its execution: Prepare returns what Fingerprint would,
// and execute, which runs the command it read as Execute would (given the
// command with its Fingerprint set). The workers use it when the executor
// has it.
type Preparer interface {
	Prepare(cmd Command) (fingerprint string, execute func(context.Context, Command) Outcome, err error)
}

// WorkerConfig tunes a Worker. The zero value is usable.
type WorkerConfig struct {
	Config
	Shards     int // parallel command lanes (default 256); one order always uses the same lane
	MaxDeliver int // deliveries before a command is dead-lettered (default 5)
	// AckWait is how soon a command a worker took is delivered again if
	// the worker dies with it (default 1s): after a crash, the restarted
	// service (or another instance) takes it up at once. A live worker
	// signals progress on every command it holds, however long it waits
	// or runs, up to HoldLimit.
	AckWait time.Duration
	// HoldLimit is how long a worker vouches for one command it holds
	// (default 10 × AckWait). Past it JetStream delivers the command again
	// (to this worker or another instance), as it would if the worker had
	// hung, and after MaxDeliver deliveries it is answered unavailable.
	HoldLimit     time.Duration
	MaxAckPending int // commands in flight (default 1024)
	Logger        *slog.Logger
	// Observer is told about every answer and dead letter (metrics.go);
	// nil: nobody is.
	Observer CommandObserver
	// TracerProvider traces each command (trace.go) as a child of the
	// span its headers carry; nil traces nothing, but the command's
	// executor still gets that span context.
	TracerProvider trace.TracerProvider
	// Callbacks verifies the signature of every PaymentCallback
	// (callbacksig.Verifier); without it every callback is refused.
	Callbacks CallbackVerifier
}

// Worker consumes the command stream and answers every command once.
type Worker struct {
	nc   *natsgo.Conn
	js   jetstream.JetStream
	exec Executor
	cfg  WorkerConfig
	log  *slog.Logger
	kv   jetstream.KeyValue

	ready chan struct{} // closed once the worker consumes
	// settling carries commands whose outcome is being stored, in the order
	// their lanes handed them over, to the goroutine that acknowledges each
	// once its outcome is stored.
	settling chan settling
	// stopping is closed when Run's context ends (unavailable.go).
	stopping <-chan struct{}
	progress *progress // vouches for the commands the worker holds
	tracer   trace.Tracer
}

// settling is an answered command whose outcome is on its way to the
// outcome bucket; its message is acknowledged when the bucket confirms.
type settling struct {
	msg       jetstream.Msg
	stored    jetstream.PubAckFuture
	commandID string
	orderID   string
	traceID   string
}

// pullExpiry is how long one pull request of the workers lasts.
const pullExpiry = 4 * time.Second

// outcomeStoreTimeout bounds the wait for the outcome bucket's confirmation;
// past it the command is redelivered (and answered again, from the stream).
const outcomeStoreTimeout = 10 * time.Second

// NewWorker returns a worker; Run starts it.
func NewWorker(nc *natsgo.Conn, exec Executor, cfg WorkerConfig) (*Worker, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(outcomeStoreTimeout))
	if err != nil {
		return nil, err
	}
	cfg.Config = cfg.Config.withDefaults()
	if cfg.Shards <= 0 {
		cfg.Shards = 256
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 5
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = time.Second
	}
	if cfg.HoldLimit <= 0 {
		cfg.HoldLimit = 10 * cfg.AckWait
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StartupLog == nil {
		cfg.StartupLog = cfg.Logger
	}
	return &Worker{nc: nc, js: js, exec: exec, cfg: cfg, log: cfg.Logger, ready: make(chan struct{}),
		settling: make(chan settling, cfg.MaxAckPending), progress: newProgress(cfg.AckWait, cfg.HoldLimit),
		tracer: tracerOf(cfg.TracerProvider)}, nil
}

// Ready is closed once Run has set up the stream, consumer and bucket and
// is taking commands.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// Run processes commands until ctx ends, then stops taking new ones and
// finishes (drains) those in flight before returning. A ctx that ends
// during setup is a normal stop, not an error.
func (w *Worker) Run(ctx context.Context) error {
	err := w.run(ctx)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}

func (w *Worker) run(ctx context.Context) error {
	w.stopping = ctx.Done()
	if err := EnsureStreams(ctx, w.js, w.cfg.Config); err != nil {
		return err
	}
	wait, log := w.cfg.StartupWait, w.cfg.StartupLog
	if err := awaitResource(ctx, log, wait, "open key-value bucket "+BucketOutcomes, func(ctx context.Context) (err error) {
		w.kv, err = w.js.KeyValue(ctx, BucketOutcomes)
		return err
	}); err != nil {
		return err
	}
	var cons jetstream.Consumer
	if err := awaitResource(ctx, log, wait, "create consumer "+ConsumerWorkers, func(ctx context.Context) (err error) {
		cons, err = w.js.CreateOrUpdateConsumer(ctx, StreamCommands, jetstream.ConsumerConfig{
			Durable:       ConsumerWorkers,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       w.cfg.AckWait,
			MaxDeliver:    w.cfg.MaxDeliver,
			MaxAckPending: w.cfg.MaxAckPending,
			// Every subject of the stream, so that a command on a subject the
			// workers do not understand is answered and dead-lettered rather
			// than stored and forgotten; the payment timers' schedules are
			// skipped.
			FilterSubject: SubjectCommands,
		})
		return err
	}); err != nil {
		return err
	}
	advisories, err := w.watchMaxDeliveries()
	if err != nil {
		return err
	}
	defer advisories.Unsubscribe()

	// Work goes on after ctx ends until in-flight commands are answered.
	work := context.WithoutCancel(ctx)
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		w.settle()
	}()
	stopProgress := make(chan struct{})
	progressed := make(chan struct{})
	go func() {
		defer close(progressed)
		w.progress.run(stopProgress)
	}()
	lanes := make([]*lane, w.cfg.Shards)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = newLane()
		wg.Add(1)
		go func() {
			defer wg.Done()
			lanes[i].run(func(msg jetstream.Msg) { w.handle(work, lanes[i], msg) })
		}()
	}
	ended := &consumeEnd{}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if strings.HasPrefix(msg.Subject(), SubjectTimerPrefix) {
			_ = msg.Ack() // a payment timer's schedule: the server fires it
			return
		}
		w.progress.hold(msg)
		lanes[shardOf(msg.Subject(), len(lanes))].push(msg)
	}, jetstream.PullMaxMessages(w.cfg.MaxAckPending),
		// Short pull requests, so their idle heartbeats (half the expiry) show
		// within seconds that the server lost them (JetStream restarted after
		// a full disk, a cluster node failed over) and the pull is renewed;
		// the default expiry would leave the workers idle for half a minute.
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(cc jetstream.ConsumeContext, err error) { ended.check(ctx, cons, cc, err) }))
	if err == nil {
		close(w.ready)
		select {
		case <-ctx.Done():
			cc.Drain()
			<-cc.Closed()
		case <-cc.Closed():
			// The consumption ended by itself (the consumer or its stream
			// was deleted): the workers take no more commands, so Run must
			// say so rather than wait for a shutdown that never comes.
			err = ended.cause()
		}
	}
	for _, l := range lanes {
		l.close()
	}
	wg.Wait()
	close(w.settling)
	<-settled
	close(stopProgress)
	<-progressed
	if err != nil {
		return fmt.Errorf("consume %s: %w", StreamCommands, err)
	}
	return nil
}

// settle acknowledges each answered command once the outcome bucket has
// confirmed its outcome, or has it redelivered if the bucket refused it.
// Storing the outcome asynchronously frees the order's lane as soon as the
// reply is sent, so the next command of the order (which its client sends
// on receiving the reply) does not wait for the bucket's round trip too.
func (w *Worker) settle() {
	for s := range w.settling {
		select {
		case <-s.stored.Ok():
			w.ack(s.msg)
		case err := <-s.stored.Err():
			if casFailed(err) {
				// Another delivery of the command stored its outcome
				// first; that one stays.
				w.ack(s.msg)
				continue
			}
			w.log.Warn("store outcome", "command_id", s.commandID, "order_id", s.orderID, "trace_id", s.traceID, "err", err)
			w.nak(s.msg, time.Second)
		}
	}
}

// ack, nak and term settle a message with JetStream and stop vouching for it.
func (w *Worker) ack(msg jetstream.Msg) {
	_ = msg.Ack()
	w.progress.release(msg)
}

func (w *Worker) nak(msg jetstream.Msg, delay time.Duration) {
	_ = msg.NakWithDelay(delay)
	w.progress.release(msg)
}

func (w *Worker) term(msg jetstream.Msg, reason string) {
	_ = msg.TermWithReason(reason)
	w.progress.release(msg)
}

// handle processes one message to an acknowledgement, a termination, or a
// redelivery.
func (w *Worker) handle(ctx context.Context, l *lane, msg jetstream.Msg) {
	cmd, replyTo, bad := w.parse(msg)
	ctx, span := w.tracer.Start(extractTrace(ctx, msg.Headers()), "process "+cmd.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(commandAttrs(cmd)...)
		span.SetAttributes(attribute.Int("ordo.delivery", cmd.Delivery))
	}
	if bad != nil {
		w.finish(ctx, msg, cmd, replyTo, *bad, claim{})
		return
	}
	cl, out, prepared := w.admit(ctx, &cmd)
	if cl.answer != nil {
		w.finish(ctx, msg, cmd, replyTo, *cl.answer, cl)
		return
	}
	if !out.Retry {
		out = w.executeWith(ctx, cmd, prepared)
		if storeUnavailable(out) {
			var ok bool
			if out, ok = w.untilAvailable(ctx, l, msg, cmd, replyTo, out); !ok {
				return // the worker is stopping; the command is redelivered later
			}
		}
	}
	if out.Retry {
		if cmd.Delivery < w.cfg.MaxDeliver {
			w.nak(msg, time.Duration(cmd.Delivery)*200*time.Millisecond)
			return
		}
		out.Retry = false
		out.Error = &ErrorBody{Code: string(domain.CodeUnavailable), Message: fmt.Sprintf(
			"the command could not be processed after %d attempts (%s); resend it with the same command ID later", cmd.Delivery, errMessage(out))}
	}
	w.finish(ctx, msg, cmd, replyTo, out, cl)
}

// admit fingerprints a command and records its command ID in the ledger
// (see claim). It returns the claim, or an outcome that stops the command
// before it runs: bad input, or a ledger that did not answer (Retry); and
// the executor's prepared execution of the command, if it has one.
func (w *Worker) admit(ctx context.Context, cmd *Command) (claim, Outcome, func(context.Context, Command) Outcome) {
	var err error
	var prepared func(context.Context, Command) Outcome
	if p, ok := w.exec.(Preparer); ok {
		cmd.Fingerprint, prepared, err = p.Prepare(*cmd)
	} else {
		cmd.Fingerprint, err = w.exec.Fingerprint(*cmd)
	}
	if err != nil {
		out := Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{}}
		var de *domain.Error
		if !errors.As(err, &de) {
			commandLog(w.log, ctx, cmd.ID, cmd.OrderID).Error("fingerprint command", "type", cmd.Type, "err", err)
			de = &domain.Error{Code: domain.CodeInternal, Message: "the command could not be read; it was recorded as a dead letter for investigation"}
		}
		out.Error = &ErrorBody{Code: string(de.Code), Message: de.Message, Field: de.Field}
		return claim{answer: &out}, Outcome{}, nil
	}
	cl, err := w.claim(ctx, *cmd)
	if err != nil {
		commandLog(w.log, ctx, cmd.ID, cmd.OrderID).Warn("command ID ledger", "delivery", cmd.Delivery, "err", err)
		return claim{}, Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Retry: true, Error: &ErrorBody{
			Code: string(domain.CodeUnavailable), Message: "the outcome bucket did not answer"}}, nil
	}
	return cl, Outcome{}, prepared
}

func errMessage(o Outcome) string {
	if o.Error != nil {
		return o.Error.Message
	}
	return "unknown failure"
}

// parse reads a command from a message; a malformed message yields the
// outcome to answer it with.
func (w *Worker) parse(msg jetstream.Msg) (Command, string, *Outcome) {
	h := msg.Headers()
	replyTo := h.Get(HeaderReplyTo)
	cmd := Command{ID: h.Get(HeaderCommandID), CorrelationID: h.Get(HeaderCorrelationID), CausationID: h.Get(HeaderCausationID), Body: msg.Data(),
		FreshID: h.Get(HeaderCommandIDFresh) == "true", Signature: h.Get(HeaderSignature)}
	stored := time.Now()
	if md, err := msg.Metadata(); err == nil {
		cmd.Delivery, stored = int(md.NumDelivered), md.Timestamp
	}
	cmd.Accepted = stored
	if cmd.CorrelationID == "" {
		cmd.CorrelationID = cmd.ID
	}
	reject := func(code domain.Code, field, format string, args ...any) (Command, string, *Outcome) {
		return cmd, replyTo, &Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID,
			Error: &ErrorBody{Code: string(code), Field: field, Message: fmt.Sprintf(format, args...)}}
	}
	orderID, typ, ok := parseSubject(msg.Subject())
	if !ok {
		return reject(domain.CodeInvalidCommand, "subject", "subject %q is not a command subject: send commands on %s<order-id>.<CommandType>",
			msg.Subject(), SubjectCommandPrefix)
	}
	cmd.OrderID, cmd.Type = orderID, typ
	if t := h.Get(HeaderCommandType); t != "" && t != typ {
		return reject(domain.CodeInvalidCommand, HeaderCommandType, "header says %q but the subject says %q", t, typ)
	}
	if !validCommandID(cmd.ID) {
		return reject(domain.CodeInvalidCommand, HeaderCommandID, "must be 1 to 128 letters, digits or - _ = . (got %q)", cmd.ID)
	}
	if len(cmd.Body) > w.cfg.MaxPayload {
		return reject(domain.CodePayloadTooLarge, "", "the command is %d bytes; at most %d are accepted", len(cmd.Body), w.cfg.MaxPayload)
	}
	if err := w.verifyCallback(cmd, stored); err != nil {
		return reject(domain.CodeUnauthenticated, HeaderSignature, "%v", err)
	}
	return cmd, replyTo, nil
}

// execute runs the executor, turning a panic into an internal error.
func (w *Worker) execute(ctx context.Context, cmd Command) Outcome {
	return w.executeWith(ctx, cmd, nil)
}

// executeWith is execute through prepared, the executor's prepared
// execution of cmd, when it is not nil.
func (w *Worker) executeWith(ctx context.Context, cmd Command, prepared func(context.Context, Command) Outcome) (out Outcome) {
	defer func() {
		if r := recover(); r != nil {
			commandLog(w.log, ctx, cmd.ID, cmd.OrderID).Error("command handler panicked", "type", cmd.Type, "panic", r)
			out = Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Error: &ErrorBody{
				Code: string(domain.CodeInternal), Message: "the command handler failed; the command was recorded as a dead letter for investigation"}}
		}
	}()
	if prepared != nil {
		return prepared(ctx, cmd)
	}
	return w.exec.Execute(ctx, cmd)
}

// finish answers the requester, stores the outcome, and acknowledges the
// message, or terminates it (recording a dead letter) for bad input. The
// reply goes first: the events are already durable, and the requester should
// not wait for the outcome bucket. If the outcome cannot be stored the
// message is redelivered; executing it again returns the same outcome.
//
// cl is the command's claim in the ledger: the outcome replaces the
// claim's record when it is final and the command was executed. Answers
// from the ledger itself (a resend's first outcome, command_id_reused) and
// commands refused before they were claimed (malformed: the client may fix
// them and send them again under the same ID) store nothing.
func (w *Worker) finish(ctx context.Context, msg jetstream.Msg, cmd Command, replyTo string, out Outcome, cl claim) {
	body, _ := json.Marshal(out)
	_, span := w.tracer.Start(ctx, "reply")
	w.reply(ctx, replyTo, out, body)
	span.End()
	markOutcome(trace.SpanFromContext(ctx), out)
	w.observe(cmd.Type, cmd.Accepted, out)
	transient := out.Error != nil && out.Error.Code == string(domain.CodeUnavailable)
	// A resend answered with a first outcome that was bad input is not
	// recorded again: the first send was.
	deadLetter := out.Error != nil && !out.Duplicate && (transient || badInput(out.Error.Code))
	store := cl.held && final(out)
	if store && !deadLetter {
		// The common case: store the outcome without waiting here; settle
		// acknowledges the message once it is stored.
		stored, err := w.js.PublishMsgAsync(w.outcomeMsg(out, cl))
		if err != nil {
			commandLog(w.log, ctx, out.CommandID, out.OrderID).Warn("store outcome", "err", err)
			w.nak(msg, time.Second)
			return
		}
		w.settling <- settling{msg: msg, stored: stored, commandID: out.CommandID, orderID: out.OrderID, traceID: traceID(ctx)}
		return
	}
	if cl.held && out.Error != nil && out.Error.Code == string(domain.CodeCommandIDReused) {
		w.unclaim(ctx, out.CommandID, out.OrderID, cl)
	}
	if store {
		if _, err := w.js.PublishMsg(ctx, w.outcomeMsg(out, cl)); err != nil && !casFailed(err) {
			commandLog(w.log, ctx, out.CommandID, out.OrderID).Warn("store outcome", "err", err)
			w.nak(msg, time.Second)
			return
		}
	}
	if deadLetter {
		w.deadLetter(ctx, msg.Subject(), msg.Headers(), msg.Data(), out.Error)
		w.term(msg, out.Error.Code)
		return
	}
	w.ack(msg)
}

// outcomeMsg puts the command's final outcome in the outcome bucket in
// place of its claim's record, unless that record has changed since: then
// another delivery of the command stored its outcome first.
func (w *Worker) outcomeMsg(out Outcome, cl claim) *natsgo.Msg {
	rec := record{Outcome: out}
	rec.Duplicate = false // what is kept is the first outcome
	if cl.fingerprint != "" {
		rec.Fingerprint, rec.Type = cl.fingerprint, cl.commandType
	}
	m := natsgo.NewMsg(outcomeSubject(out.CommandID))
	m.Data, _ = json.Marshal(rec)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(cl.revision, 10))
	return m
}

func (w *Worker) reply(ctx context.Context, replyTo string, out Outcome, body []byte) {
	if replyTo == "" || reservedReplySubject(replyTo) {
		return
	}
	m := natsgo.NewMsg(replyTo)
	m.Data = body
	m.Header.Set(HeaderStatus, "200")
	if out.Error != nil {
		m.Header.Set(HeaderStatus, strconv.Itoa(domain.NATSStatus(domain.Code(out.Error.Code))))
	}
	if err := w.nc.PublishMsg(m); err != nil {
		commandLog(w.log, ctx, out.CommandID, out.OrderID).Warn("reply", "err", err)
	}
}

// deadLetter records a command that will not be processed, with the reason.
func (w *Worker) deadLetter(ctx context.Context, subject string, h natsgo.Header, data []byte, e *ErrorBody) {
	m := natsgo.NewMsg(SubjectDeadPrefix + subject)
	for k, v := range h {
		if k != HeaderMsgID { // the dead-letter stream must keep every record
			m.Header[k] = v
		}
	}
	m.Header.Set(HeaderDeadCode, e.Code)
	m.Header.Set(HeaderDeadReason, e.Message)
	m.Data = data
	orderID, _, _ := parseSubject(subject)
	log := commandLog(w.log, extractTrace(ctx, h), h.Get(HeaderCommandID), orderID)
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		log.Error("record dead letter", "subject", subject, "err", err)
	}
	if w.cfg.Observer != nil {
		w.cfg.Observer.DeadLettered(e.Code)
	}
	// The log's handler limits how many of these lines pass (a flood of
	// bad commands must not flood the log) and counts those it drops.
	log.Warn("command dead-lettered",
		"subject", subject, "code", e.Code, "reason", e.Message)
}

// watchMaxDeliveries answers commands whose deliveries ran out while no
// worker could finish them (for example, a command that crashes the worker
// process every time): the advisory names the message, which is recorded as
// a dead letter and answered. The workers of every instance share the
// consumer, so they share the advisories too, in one queue group: one of
// them records each dead letter, not every instance.
func (w *Worker) watchMaxDeliveries() (*natsgo.Subscription, error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamCommands + "." + ConsumerWorkers
	return w.nc.QueueSubscribe(subject, "ordo-max-deliveries", func(m *natsgo.Msg) {
		var adv struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries int    `json:"deliveries"`
		}
		if json.Unmarshal(m.Data, &adv) != nil || adv.StreamSeq == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := w.js.Stream(ctx, StreamCommands)
		if err != nil {
			return
		}
		raw, err := stream.GetMsg(ctx, adv.StreamSeq)
		if err != nil {
			w.log.Warn("max deliveries: fetch message", "seq", adv.StreamSeq, "err", err)
			return
		}
		orderID, _, _ := parseSubject(raw.Subject)
		id := raw.Header.Get(HeaderCommandID)
		if validCommandID(id) {
			var rec record
			if e, err := w.kv.Get(ctx, id); err == nil && json.Unmarshal(e.Value(), &rec) == nil && !rec.Pending {
				return // answered after all (the last delivery finished)
			}
		}
		e := &ErrorBody{Code: string(domain.CodeUnavailable), Message: fmt.Sprintf(
			"the command was delivered %d times without being processed; it was recorded as a dead letter", adv.Deliveries)}
		out := Outcome{CommandID: id, OrderID: orderID, Error: e}
		body, _ := json.Marshal(out)
		w.deadLetter(ctx, raw.Subject, raw.Header, raw.Data, e)
		w.reply(extractTrace(ctx, raw.Header), raw.Header.Get(HeaderReplyTo), out, body)
		_, typ, _ := parseSubject(raw.Subject)
		w.observe(typ, raw.Time, out)
	})
}
