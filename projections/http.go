package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// API serves the read models over HTTP.
type API struct {
	m   *Manager
	log *slog.Logger
	// MaxWait bounds how long a query with min_position waits for the
	// projection to catch up.
	MaxWait time.Duration
}

// NewAPI returns the query API over the manager's current read models.
func NewAPI(m *Manager, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{m: m, log: log, MaxWait: 5 * time.Second}
}

func (a *API) store() *Store {
	s, _ := a.m.Current()
	return s
}

func (a *API) runner() *Runner {
	_, r := a.m.Current()
	return r
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/orders/{id}", a.getOrder)
	mux.HandleFunc("GET /v1/orders", listHandler(a, "/v1/orders", (*Store).ListOrders, "state", "customer", "older_than", "limit", "cursor", "min_position"))
	mux.HandleFunc("GET /v1/payments", listHandler(a, "/v1/payments", (*Store).ListPayments, "status", "older_than", "limit", "cursor", "min_position"))
	mux.HandleFunc("GET /v1/shipments", listHandler(a, "/v1/shipments", (*Store).ListShipments, "status", "payment_status", "older_than", "limit", "cursor", "min_position"))
	mux.HandleFunc("GET /v1/refunds", listHandler(a, "/v1/refunds", (*Store).ListRefunds, "status", "older_than", "limit", "cursor", "min_position"))
	mux.HandleFunc("GET /v1/stats", a.stats)
	mux.HandleFunc("GET /v1/projections", a.projections)
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := domain.NormalizeOrderID(r.PathValue("id")) // a UUID in any case names one order
	if !ok {
		writeError(w, domain.CodeInvalidCommand, "id", fmt.Sprintf("order IDs are UUIDs, got %s", quote(id)))
		return
	}
	v := r.URL.Query()
	if err := checkParams(v, "/v1/orders/{id}", "min_position"); err != nil {
		a.queryError(w, r, err)
		return
	}
	if !a.waitMinPosition(w, r, v.Get("min_position")) {
		return
	}
	o, err := a.store().GetOrder(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, domain.CodeNotFound, "", fmt.Sprintf("order %s is not in the read models", id))
	case err != nil:
		a.log.Error("query order", "order_id", id, "err", err)
		writeError(w, domain.CodeInternal, "", "the read models could not be queried")
	default:
		writeJSON(w, http.StatusOK, o)
	}
}

// headCheckAfter is how long a query with min_position waits before it
// checks that the position exists at all.
const headCheckAfter = 100 * time.Millisecond

// waitMinPosition implements read-your-writes: with min_position (the
// position a command reply carried) the query waits, bounded, until the
// projection has applied it. A position beyond the event store's head
// cannot be reached by waiting (no command reply carries one): it is
// refused at once.
func (a *API) waitMinPosition(w http.ResponseWriter, r *http.Request, raw string) bool {
	if raw == "" {
		return true
	}
	pos, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(w, domain.CodeInvalidCommand, "min_position", fmt.Sprintf("must be a non-negative integer position from a command reply, got %s", quote(raw)))
		return false
	}
	runner := a.runner()
	ctx, cancel := context.WithTimeout(r.Context(), a.MaxWait)
	defer cancel()
	// Usually the projection is a moment behind; only a query still
	// waiting after that asks the event store for its head.
	quick, cancelQuick := context.WithTimeout(ctx, min(a.MaxWait, headCheckAfter))
	err = runner.WaitFor(quick, pos)
	cancelQuick()
	if err != nil && !errors.Is(err, ErrStopped) && ctx.Err() == nil {
		if head, herr := a.m.src.Head(ctx); herr == nil && pos > head {
			writeError(w, domain.CodeInvalidCommand, "min_position", fmt.Sprintf(
				"position %d is beyond the event store's head %d: it did not come from a command reply of this service", pos, head))
			return false
		}
		err = runner.WaitFor(ctx, pos)
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrStopped):
		writeError(w, domain.CodeUnavailable, "min_position", "the read models are stopped (see /v1/projections); a rebuild restarts them")
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, domain.CodeUnavailable, "min_position", fmt.Sprintf("the read models have not reached position %d within %s (at %d); try again", pos, a.MaxWait, runner.Status(r.Context()).Position))
	}
	return false
}

func (a *API) projections(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query(), "/v1/projections"); err != nil {
		a.queryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"projections": []Status{a.runner().Status(r.Context())}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code domain.Code, field, msg string) {
	body := map[string]string{"code": string(code), "message": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, domain.HTTPStatus(code), map[string]any{"error": body})
}

// listHandler serves one list endpoint, taking params: it checks them,
// answers 400 naming a bad one, and pages through the rows.
func listHandler[T any](a *API, endpoint string, list func(*Store, context.Context, ListQuery) (Page[T], error), params ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		if err := checkParams(v, endpoint, params...); err != nil {
			a.queryError(w, r, err)
			return
		}
		q, err := parseListQuery(v)
		if err != nil {
			a.queryError(w, r, err)
			return
		}
		if !a.waitMinPosition(w, r, v.Get("min_position")) {
			return
		}
		page, err := list(a.store(), r.Context(), q)
		if err != nil {
			a.queryError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, page)
	}
}

// queryError answers 400 naming a bad parameter, or 500 for anything else.
func (a *API) queryError(w http.ResponseWriter, r *http.Request, err error) {
	var iq *InvalidQueryError
	if errors.As(err, &iq) {
		writeError(w, domain.CodeInvalidCommand, iq.Param, iq.Reason)
		return
	}
	a.log.Error("read-model query", "path", r.URL.Path, "err", err)
	writeError(w, domain.CodeInternal, "", "the read models could not be queried")
}

// parseListQuery reads the list parameters; checkParams has refused the
// ones the endpoint does not take.
func parseListQuery(v url.Values) (ListQuery, error) {
	q := ListQuery{Status: v.Get("status"), PaymentStatus: v.Get("payment_status"), Customer: v.Get("customer"), Cursor: v.Get("cursor")}
	if s := v.Get("state"); s != "" {
		q.Status = s
	}
	if s := v.Get("older_than"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return q, &InvalidQueryError{"older_than", fmt.Sprintf("must be a Go duration such as 24h or 90m, got %s", quote(s))}
		}
		q.OlderThan = d
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return q, &InvalidQueryError{"limit", fmt.Sprintf("must be a whole number from 1 to 500, got %s", quote(s))}
		}
		q.Limit = n
	}
	return q, nil
}

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := checkParams(v, "/v1/stats", "min_position"); err != nil {
		a.queryError(w, r, err)
		return
	}
	if !a.waitMinPosition(w, r, v.Get("min_position")) {
		return
	}
	st, err := a.store().Stats(r.Context())
	if err != nil {
		a.log.Error("stats", "err", err)
		writeError(w, domain.CodeInternal, "", "the read models could not be queried")
		return
	}
	writeJSON(w, http.StatusOK, st)
}
