package projections

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ordo-dev/ordo/domain"
)

// RegisterAdmin adds the rebuild endpoints to mux: start (POST), follow
// (GET) and cancel (DELETE) a rebuild of the read models in the running
// service, which `ordo replay` uses. They are for operators: serve them
// over HTTP only, not over NATS.
func (a *API) RegisterAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/rebuild", a.startRebuild)
	mux.HandleFunc("GET /v1/admin/rebuild", a.rebuildStatus)
	mux.HandleFunc("DELETE /v1/admin/rebuild", a.cancelRebuild)
}

func (a *API) startRebuild(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := checkParams(v, "POST /v1/admin/rebuild", "from", "restart"); err != nil {
		a.queryError(w, r, err)
		return
	}
	var opts RebuildOptions
	if s := v.Get("from"); s != "" {
		from, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, domain.CodeInvalidCommand, "from", fmt.Sprintf("must be an $all position (a non-negative integer), got %s", quote(s)))
			return
		}
		opts.From = from
	}
	if s := v.Get("restart"); s != "" {
		restart, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, domain.CodeInvalidCommand, "restart", fmt.Sprintf("must be true or false, got %s", quote(s)))
			return
		}
		opts.Restart = restart
	}
	switch err := a.m.StartRebuild(opts); {
	case errors.Is(err, ErrRebuildRunning):
		writeError(w, domain.CodeConflict, "", "a rebuild is already running; follow it with GET /v1/admin/rebuild or cancel it with DELETE")
		return
	case err != nil:
		a.queryError(w, r, err)
		return
	}
	a.log.Info("read-model rebuild started", "restart", opts.Restart)
	p, _ := a.m.RebuildStatus()
	writeJSON(w, http.StatusAccepted, p)
}

func (a *API) rebuildStatus(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query(), r.Method+" /v1/admin/rebuild"); err != nil {
		a.queryError(w, r, err)
		return
	}
	p, ok := a.m.RebuildStatus()
	if !ok {
		writeError(w, domain.CodeNotFound, "", "no rebuild was started since the service started")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *API) cancelRebuild(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query(), "DELETE /v1/admin/rebuild"); err != nil {
		a.queryError(w, r, err)
		return
	}
	a.m.CancelRebuild()
	a.rebuildStatus(w, r)
}
