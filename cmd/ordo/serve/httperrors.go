package serve

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// jsonErrors serves mux, answering what mux itself refuses in the API's
// JSON error form instead of plain text: an unknown path 404 not_found, a
// known path asked with a method it does not take 405 method_not_allowed
// with the Allow header. Everything else, redirects included, is mux's.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route: let mux decide between 404, 405 and a redirect to a
		// cleaned path, and keep only its status and headers.
		h, _ := mux.Handler(r)
		rec := &headerRecorder{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			writeRouteError(w, domain.CodeNotFound, "no endpoint "+r.Method+" "+truncatePath(r.URL.Path)+"; the README lists the API's endpoints")
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeRouteError(w, domain.CodeMethodNotAllowed, truncatePath(r.URL.Path)+" does not take "+r.Method+"; it takes "+allow)
		default:
			for k, vs := range rec.header {
				w.Header()[k] = vs
			}
			w.WriteHeader(rec.status)
		}
	})
}

func writeRouteError(w http.ResponseWriter, code domain.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(domain.HTTPStatus(code))
	_ = json.NewEncoder(w).Encode(map[string]any{"error": ordonats.ErrorBody{Code: string(code), Message: msg}})
}

// truncatePath keeps an error message short whatever path was asked for.
func truncatePath(p string) string {
	const max = 128
	if len(p) <= max {
		return p
	}
	return strings.ToValidUTF8(p[:max], "") + "…"
}

// headerRecorder keeps a handler's status and headers and drops its body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }
