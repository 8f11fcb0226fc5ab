package serve

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/ordo-dev/ordo/projections"
)

// The rebuild endpoints are for operators (`ordo replay` while the service
// runs). They are served on the HTTP listener only, not over NATS.
func (s *Service) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/admin/rebuild", s.startRebuild)
	mux.HandleFunc("GET /v1/admin/rebuild", s.rebuildStatus)
	mux.HandleFunc("DELETE /v1/admin/rebuild", s.cancelRebuild)
}

func (s *Service) startRebuild(w http.ResponseWriter, r *http.Request) {
	var opts projections.RebuildOptions
	if v := r.URL.Query().Get("from"); v != "" {
		from, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeAdminError(w, http.StatusBadRequest, "invalid_parameter", "from must be an $all position (a non-negative integer), got "+strconv.Quote(v))
			return
		}
		opts.From = from
	}
	if v := r.URL.Query().Get("restart"); v != "" {
		restart, err := strconv.ParseBool(v)
		if err != nil {
			writeAdminError(w, http.StatusBadRequest, "invalid_parameter", "restart must be true or false, got "+strconv.Quote(v))
			return
		}
		opts.Restart = restart
	}
	if err := s.reads.StartRebuild(opts); err != nil {
		if errors.Is(err, projections.ErrRebuildRunning) {
			writeAdminError(w, http.StatusConflict, "rebuild_running", "a rebuild is already running; follow it with GET /v1/admin/rebuild or cancel it with DELETE")
			return
		}
		writeAdminError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	s.log.Info("read-model rebuild started", "from", opts.From, "restart", opts.Restart)
	w.WriteHeader(http.StatusAccepted)
	s.rebuildStatus(w, r)
}

func (s *Service) rebuildStatus(w http.ResponseWriter, _ *http.Request) {
	p, ok := s.reads.RebuildStatus()
	if !ok {
		writeAdminError(w, http.StatusNotFound, "no_rebuild", "no rebuild was started since the service started")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p)
}

func (s *Service) cancelRebuild(w http.ResponseWriter, r *http.Request) {
	s.reads.CancelRebuild()
	s.rebuildStatus(w, r)
}

func writeAdminError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
