package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	mux.HandleFunc("GET /v1/payments", listHandler(a, (*Store).ListPayments))
	mux.HandleFunc("GET /v1/shipments", listHandler(a, (*Store).ListShipments))
	mux.HandleFunc("GET /v1/refunds", listHandler(a, (*Store).ListRefunds))
	mux.HandleFunc("GET /v1/stats", a.stats)
	mux.HandleFunc("GET /v1/projections", a.projections)
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := domain.NormalizeOrderID(r.PathValue("id")) // a UUID in any case names one order
	if !ok {
		writeError(w, domain.CodeInvalidCommand, "id", fmt.Sprintf("order IDs are UUIDs, got %q", id))
		return
	}
	if !a.waitMinPosition(w, r) {
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

// waitMinPosition implements read-your-writes: with min_position (the
// position a command reply carried) the query waits, bounded, until the
// projection has applied it.
func (a *API) waitMinPosition(w http.ResponseWriter, r *http.Request) bool {
	raw := r.URL.Query().Get("min_position")
	if raw == "" {
		return true
	}
	pos, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		writeError(w, domain.CodeInvalidCommand, "min_position", "must be a non-negative integer position from a command reply")
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.MaxWait)
	defer cancel()
	if err := a.runner().WaitFor(ctx, pos); err != nil {
		writeError(w, domain.CodeUnavailable, "min_position", err.Error())
		return false
	}
	return true
}

func (a *API) projections(w http.ResponseWriter, r *http.Request) {
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

// listHandler serves one list endpoint: it parses the shared parameters,
// answers 400 naming a bad one, and pages through the rows.
func listHandler[T any](a *API, list func(*Store, context.Context, ListQuery) (Page[T], error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := parseListQuery(r)
		if err != nil {
			a.queryError(w, r, err)
			return
		}
		if !a.waitMinPosition(w, r) {
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

func parseListQuery(r *http.Request) (ListQuery, error) {
	v := r.URL.Query()
	q := ListQuery{Status: v.Get("status"), PaymentStatus: v.Get("payment_status"), Cursor: v.Get("cursor")}
	if s := v.Get("older_than"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return q, &InvalidQueryError{"older_than", fmt.Sprintf("must be a Go duration such as 24h or 90m, got %q", s)}
		}
		q.OlderThan = d
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return q, &InvalidQueryError{"limit", fmt.Sprintf("must be a whole number from 1 to 500, got %q", s)}
		}
		q.Limit = n
	}
	return q, nil
}

func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	if !a.waitMinPosition(w, r) {
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
