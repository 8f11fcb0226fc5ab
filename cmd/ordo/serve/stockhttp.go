package serve

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// registerStock serves GET /v1/stock/{sku}: the SKU's stock as its single
// writer (this instance, or the holder of the writer lease) holds it now (on hand, reserved, available, revision), for the
// dashboards watching a sale; 404 not_found for a SKU that never had
// stock. It is served over HTTP and, like the read models, over NATS
// (ordo.query.v1.stock.<sku>).
func (s *Service) registerStock(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/stock/{sku}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		view, err := s.stockView(r.Context(), r.PathValue("sku"))
		if err != nil {
			var de *domain.Error
			code, msg, field := domain.CodeUnavailable, "the stock could not be read; try again", ""
			if errors.As(err, &de) {
				code, msg, field = de.Code, de.Message, de.Field
			} else {
				s.log.Error("stock query", "sku", r.PathValue("sku"), "err", err)
			}
			w.WriteHeader(domain.HTTPStatus(code))
			_ = json.NewEncoder(w).Encode(map[string]any{"error": ordonats.ErrorBody{Code: string(code), Message: msg, Field: field}})
			return
		}
		_ = json.NewEncoder(w).Encode(view)
	})
}
