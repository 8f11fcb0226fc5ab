package serve

import (
	"net/http"

	"github.com/ordo-dev/ordo/projections"
)

// registerAdmin serves the rebuild endpoints (`ordo replay` while the
// service runs). They are for operators: on the HTTP listener only, not
// over NATS, and only with the admin token (adminauth.go).
func (s *Service) registerAdmin(mux *http.ServeMux, api *projections.API) {
	admin := http.NewServeMux()
	api.RegisterAdmin(admin)
	mux.Handle("/v1/admin/", s.requireAdminToken(jsonErrors(admin)))
}

// rebuildStaleReadModels starts rebuilding the read models in the
// background when they were upgraded in place from an older schema
// version: they answer queries meanwhile, and the rebuild swaps in rows
// computed from the events once it has caught up (GET /v1/admin/rebuild
// follows it).
func (s *Service) rebuildStaleReadModels() error {
	_, err := s.reads.StartStaleRebuild()
	return err
}
