// Package commands executes order commands: it loads the aggregate from its
// event stream, lets the domain decide, and appends the resulting events with
// the expected stream revision, retrying a bounded number of times when
// another writer got there first. A command ID that the aggregate has already
// applied is not executed again: its first outcome is returned instead.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/retry"
)

const placeOrder = "PlaceOrder"

// Request is one command as it arrives from a transport.
type Request struct {
	CommandID     string
	CommandType   string
	OrderID       string
	CorrelationID string
	CausationID   string
	Body          []byte // the command's JSON
	// Fingerprint is the command's Fingerprint, set by transports that
	// take commands from clients. It is recorded in the metadata of the
	// command's events, and a command ID the order already applied with
	// another fingerprint is refused (domain.CodeCommandIDReused). Empty
	// (the service's own commands, such as the saga's) records none and
	// makes any command under an applied ID a duplicate.
	Fingerprint string
	// TraceParent is the W3C traceparent of the span the command continues
	// when ctx carries none (see Tracer); empty: ctx's span, or none.
	TraceParent string
	// Decoded is Body as FingerprintCommand decoded it, so a transport
	// that fingerprints a command does not have it decoded twice; nil:
	// Execute decodes Body.
	Decoded domain.Command
}

// Result is the outcome of a command. Exactly one of Err or the success
// fields is meaningful.
type Result struct {
	CommandID string
	OrderID   string
	Revision  int64    // revision of the last event the command appended
	Position  uint64   // $all position of that event
	Events    []string // types of the events the command appended
	State     domain.State
	// Duplicate is true when the command had already been applied and this is
	// its first outcome, rebuilt from the stream.
	Duplicate bool
	// Err is a *domain.Error for rejections (stable code), or an
	// infrastructure error; see Transient.
	Err error
	// Current is the order's state when the domain refused the command
	// (on state just read from the stream), so a caller such as the saga
	// can react to the refusal without reading the order again. It is not
	// part of the reply.
	Current domain.State
}

// Transient reports whether the command failed for a reason that a later
// attempt may not meet (the event store unreachable, a timeout), as opposed
// to a decision that will not change.
func (r Result) Transient() bool {
	if r.Err == nil {
		return false
	}
	var de *domain.Error
	return !errors.As(r.Err, &de)
}

// Options tune a Service. The zero value is usable.
type Options struct {
	Clock      func() time.Time // default time.Now
	Logger     *slog.Logger     // default discards
	MaxRetries int              // conflict retries, default 8
	CacheSize  int              // aggregates kept in memory, default 100,000
	Tracer     Tracer           // a span per command; default none
}

// Service executes commands against an EventStore.
type Service struct {
	store      EventStore
	clock      func() time.Time
	log        *slog.Logger
	maxRetries int
	cache      *aggregateCache
	tracer     Tracer
}

// New returns a Service over store.
func New(store EventStore, opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 8
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 100_000
	}
	return &Service{
		store:      store,
		clock:      opts.Clock,
		log:        opts.Logger,
		maxRetries: opts.MaxRetries,
		cache:      newAggregateCache(opts.CacheSize),
		tracer:     tracerOr(opts.Tracer),
	}
}

// StreamName is the event stream of an order.
func StreamName(orderID string) string { return "order-" + orderID }

// Execute runs one command to its outcome, in a span of its own whose
// traceparent its events carry.
func (s *Service) Execute(ctx context.Context, req Request) (res Result) {
	ctx, tp, end := s.tracer.Start(ctx, "execute "+req.CommandType, req.TraceParent)
	defer func() { end(res.Err) }()
	req.TraceParent = tp
	return s.execute(ctx, req)
}

func (s *Service) execute(ctx context.Context, req Request) Result {
	res := Result{CommandID: req.CommandID, OrderID: req.OrderID}
	cmd, err := s.parse(req)
	if err != nil {
		res.Err = err
		return res
	}
	meta := domain.CommandMeta{CommandID: req.CommandID, CorrelationID: req.CorrelationID, CausationID: req.CausationID,
		Fingerprint: req.Fingerprint, TraceParent: req.TraceParent}
	id := cmd.OrderID()
	agg, err := s.cache.acquire(ctx, id)
	if err != nil {
		res.Err = err
		return res
	}
	// The order is let go with what is known of it (nil when the last pass
	// could not tell); after a panic, with nothing, as the aggregate may be
	// half folded.
	released := false
	defer func() {
		if !released {
			s.cache.release(id, nil)
		}
	}()
	done := func(r Result) Result {
		released = true
		s.cache.release(id, agg)
		return r
	}
	fresh := false // whether agg is known to match the stream
	policy := conflictRetry
	policy.Attempts = s.maxRetries + 1
	err = retry.Do(ctx, policy, func(ctx context.Context, _ int) error {
		var again bool
		res, agg, again = s.attempt(ctx, req, cmd, meta, agg, fresh)
		if !again {
			return nil
		}
		fresh = true
		return errRaced
	})
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		res.Err = ctx.Err()
	default:
		res.Err = &domain.Error{Code: domain.CodeConflict, Message: fmt.Sprintf(
			"order %s kept changing under %d attempts; retry the command with the same command ID", req.OrderID, policy.Attempts)}
	}
	return done(res)
}

// conflictRetry paces the attempts of writers that lost a race for a
// stream (Service.Execute, a stock lane's batch): short, jittered, growing
// waits, so writers racing on one stream spread out instead of colliding
// again. Each user sets the bound.
var conflictRetry = retry.Policy{First: 200 * time.Microsecond, Max: 64 * 200 * time.Microsecond, Jitter: true}

// errRaced: an attempt found the stream moved on while it decided.
var errRaced = errors.New("the stream changed while deciding")

// parse decodes and validates the command and checks it addresses the order
// the transport routed it to.
func (s *Service) parse(req Request) (domain.Command, error) { return parseRequest(req) }

func parseRequest(req Request) (domain.Command, error) {
	if req.CommandID == "" {
		return nil, &domain.Error{Code: domain.CodeInvalidCommand, Field: "command_id", Message: "command ID is required"}
	}
	cmd := req.Decoded
	if cmd == nil {
		var err error
		if cmd, err = domain.DecodeCommand(req.CommandType, req.Body); err != nil {
			return nil, err
		}
	}
	// The transport's order ID (a NATS subject's) in any case names the
	// order whose canonical ID the command carries (see domain.NormalizeOrderID).
	if to, _ := domain.NormalizeOrderID(req.OrderID); req.OrderID != "" && cmd.OrderID() != to {
		return nil, &domain.Error{Code: domain.CodeInvalidCommand, Field: "order_id", Message: fmt.Sprintf(
			"the body names order %q but the command was addressed to order %q", cmd.OrderID(), req.OrderID)}
	}
	return cmd, nil
}

// attempt makes one load-decide-append pass. It returns the aggregate to
// keep (nil when what it holds may no longer match the stream) and retry=true
// when the pass must be repeated on fresh state.
//
// The first pass trusts the cache without reading the stream: the append's
// expected revision catches a stale entry. A decision taken on unread state
// is only final when it succeeds; a rejection is checked again on fresh state,
// because the stream may have moved on in another process.
func (s *Service) attempt(ctx context.Context, req Request, cmd domain.Command, meta domain.CommandMeta, agg *aggregate, fresh bool) (res Result, keep *aggregate, retry bool) {
	res = Result{CommandID: req.CommandID, OrderID: cmd.OrderID()}
	agg, fresh, err := s.load(ctx, cmd, agg, fresh)
	if err != nil {
		res.Err = err
		return res, nil, false
	}
	if prior, fingerprint, ok := agg.outcome(req.CommandID); ok {
		// An event written without a fingerprint (before they were
		// recorded, or by the service's own commands) cannot tell: the
		// command ID alone decides, as it always did.
		if fingerprint != "" && req.Fingerprint != "" && fingerprint != req.Fingerprint {
			res.Err = reusedError(req.CommandID)
			return res, agg, false
		}
		prior.CommandID, prior.OrderID = req.CommandID, cmd.OrderID()
		return prior, agg, false
	}
	events, decided := agg.order.Decide(cmd, meta, s.clock())
	if decided != nil && len(events) == 0 {
		if !fresh {
			return res, agg, true
		}
		res.Err, res.Current = decided, agg.order.State()
		return res, agg, false
	}
	if len(events) == 0 {
		// Already done (a repeated payment callback): nothing changes.
		res.Revision, res.State, res.Duplicate = agg.order.Revision(), agg.order.State(), true
		if n := len(agg.positions); n > 0 {
			res.Position = agg.positions[n-1]
		}
		return res, agg, false
	}
	encoded, err := encode(req.CommandID, events)
	if err != nil {
		res.Err = err
		return res, agg, false
	}
	stream := StreamName(cmd.OrderID())
	app, err := s.store.AppendToStream(ctx, stream, agg.order.Revision(), encoded)
	switch {
	case errors.Is(err, ErrConflict):
		return res, agg, true
	case err != nil:
		// The append may or may not have happened: forget the aggregate so
		// the next command reads the truth from the stream.
		res.Err = fmt.Errorf("append to %s: %w", stream, err)
		return res, nil, false
	}
	if err := agg.record(events, encoded, app); err != nil {
		res.Err = err
		return res, nil, false
	}
	// decided may be an error that comes with events to record (a payment
	// that does not match the total): the events are stored, the error told.
	res.Revision, res.Position, res.State, res.Err = app.Revision, app.Position, agg.order.State(), decided
	for _, e := range encoded {
		res.Events = append(res.Events, e.Type)
	}
	return res, agg, false
}

// load returns the aggregate for cmd and whether it was just read from the
// stream. agg is the cached aggregate or that of a previous pass, if any;
// fresh asks for a catch-up read.
func (s *Service) load(ctx context.Context, cmd domain.Command, agg *aggregate, fresh bool) (*aggregate, bool, error) {
	id := cmd.OrderID()
	if agg == nil {
		agg = newAggregate(id)
		// A new order needs no read: appending with "no stream expected"
		// fails if the order exists, and the retry reads it.
		if cmd.CommandType() != placeOrder || fresh {
			fresh = true
		} else {
			return agg, true, nil
		}
	}
	if !fresh {
		return agg, false, nil
	}
	if err := agg.catchUp(ctx, s.store, id); err != nil {
		return nil, false, err
	}
	return agg, true, nil
}

// encode turns decided events into store events. Event IDs derive from the
// command ID and the event's index, so appending the same decision twice is
// also recognised by the event store's own idempotency check.
func encode(commandID string, events []domain.Event) ([]NewEvent, error) {
	out := make([]NewEvent, len(events))
	for i, e := range events {
		typ, data, meta, err := domain.EncodeEvent(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.Type, err)
		}
		out[i] = NewEvent{ID: eventID(commandID, i), Type: typ, Data: data, Metadata: meta}
	}
	return out, nil
}

// eventID is the name-based UUID (version 5) of the command ID and index.
func eventID(commandID string, index int) [16]byte {
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%d", commandID, index))
}

// eventNamespace is the UUID name space of eventID.
var eventNamespace = uuid.MustParse("de53d02c-757a-43fb-b907-831cfbd260e7")

// GetOrder returns the order as its aggregate sees it now; the ID may be a
// UUID in any case (it names the order of its canonical form). Unknown or
// malformed IDs give a *domain.Error with CodeNotFound or CodeInvalidCommand.
func (s *Service) GetOrder(ctx context.Context, orderID string) (domain.OrderView, error) {
	id, ok := domain.NormalizeOrderID(orderID)
	if !ok {
		return domain.OrderView{}, &domain.Error{Code: domain.CodeInvalidCommand, Field: "order_id", Message: fmt.Sprintf("%q is not a UUID", orderID)}
	}
	return s.orderView(ctx, id, true)
}

// orderView returns the order's view. With fresh it reads the events after
// the cached revision first; without, a cached order that exists is
// trusted as it is, which suits callers that only need what never changes
// once an order is placed (its lines).
func (s *Service) orderView(ctx context.Context, orderID string, fresh bool) (domain.OrderView, error) {
	agg, err := s.cache.acquire(ctx, orderID)
	if err != nil {
		return domain.OrderView{}, err
	}
	if agg == nil {
		agg = newAggregate(orderID)
	}
	if fresh || !agg.order.Exists() {
		if err := agg.catchUp(ctx, s.store, orderID); err != nil {
			s.cache.release(orderID, nil)
			return domain.OrderView{}, err
		}
	}
	exists := agg.order.Exists()
	var view domain.OrderView
	if exists {
		view = agg.order.View() // before release: another goroutine may fold into agg after it
	}
	s.cache.release(orderID, agg)
	if !exists {
		return domain.OrderView{}, &domain.Error{Code: domain.CodeNotFound, Message: fmt.Sprintf("order %s does not exist", orderID)}
	}
	return view, nil
}
