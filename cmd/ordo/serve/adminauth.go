package serve

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// requireAdminToken lets a request through to h only with the header
// Authorization: Bearer <the admin token>; anything else is 401
// unauthenticated, before h routes it.
func (s *Service) requireAdminToken(h http.Handler) http.Handler {
	want := sha256.Sum256(s.adminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		// Hashes of equal length, compared in constant time: the time
		// taken says nothing about the token.
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ordo-admin"`)
			writeCallbackJSON(w, http.StatusUnauthorized, map[string]any{"error": ordonats.ErrorBody{
				Code: string(domain.CodeUnauthenticated),
				Message: "the admin endpoints and the dead letters need Authorization: Bearer <token>, the token in the service's secrets directory " +
					"(" + secretsDirName + "/" + AdminTokenFile + " in its data directory unless --secrets says otherwise)"}})
			return
		}
		h.ServeHTTP(w, r)
	})
}
