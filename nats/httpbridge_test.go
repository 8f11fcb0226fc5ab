package nats

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestQueriesOverNATSAnswerJSON: a subject no query serves gets a JSON
// error with its status, like every other reply; the API's own replies,
// errors included, pass through unchanged.
func TestQueriesOverNATSAnswerJSON(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("limit") == "x" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"invalid_command","field":"limit","message":"not a number"}}`)
			return
		}
		fmt.Fprint(w, `{"orders":3}`)
	})
	sub, err := ServeHTTPQueries(nc, mux, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for _, tc := range []struct {
		subject, query string
		status         string
		code, body     string
	}{
		{"ordo.query.v1.stats", "", "200", "", `{"orders":3}`},
		{"ordo.query.v1.stats", "limit=x", "400", "invalid_command", ""},
		{"ordo.query.v1.nope", "", "404", "not_found", ""},
		{"ordo.query.v1.stats.extra", "", "404", "not_found", ""},
	} {
		t.Run(tc.subject+"?"+tc.query, func(t *testing.T) {
			m, err := nc.Request(tc.subject, []byte(tc.query), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get(HeaderStatus); got != tc.status {
				t.Errorf("status %s, want %s", got, tc.status)
			}
			if tc.body != "" {
				if string(m.Data) != tc.body {
					t.Fatalf("body %s, want %s", m.Data, tc.body)
				}
				return
			}
			var reply struct {
				Error *ErrorBody `json:"error"`
			}
			if err := json.Unmarshal(m.Data, &reply); err != nil || reply.Error == nil || reply.Error.Code != tc.code || reply.Error.Message == "" {
				t.Fatalf("body %q: want a JSON error with code %s (%v)", m.Data, tc.code, err)
			}
		})
	}
}
