package serve

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"time"

	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// The operator's page is plain HTML, CSS and a small script, embedded in
// the binary so that `ordo serve` needs nothing else (no CDN, no build
// step). The script reads the JSON endpoints the API already serves and
// the few this file adds for it.
//
//go:embed page
var pageFiles embed.FS

// defaultPaymentTimeout is the saga's own default (commands.SagaOptions),
// shown on the page when the service was started without one.
const defaultPaymentTimeout = 15 * time.Minute

// registerPage serves the operator's page at / with its assets under /ui/,
// and the endpoints only the page and operators need, on the HTTP listener
// only: an order's timeline from the event store, the dead letters (with
// the admin token) and the commands answered over the last minutes.
func (s *Service) registerPage(mux *http.ServeMux, cfg Config) error {
	assets, err := fs.Sub(pageFiles, "page")
	if err != nil {
		return fmt.Errorf("operator page assets: %w", err)
	}
	index, err := renderIndex(assets, cfg.PaymentTimeout)
	if err != nil {
		return err
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	})
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if _, err := fs.Stat(assets, name); err != nil || name == "index.html" {
			writeFieldError(w, domain.CodeNotFound, "", "no asset "+truncatePath(name)+" on the operator's page")
			return
		}
		http.ServeFileFS(w, r, assets, name)
	})
	mux.HandleFunc("GET /ui/lifecycle.svg", serveLifecycleSVG(lifecycleSVG()))
	mux.HandleFunc("GET /v1/orders/{id}/history", s.serveTimeline)
	// Dead letters hold command bodies (orders, payments): the admin
	// token guards them as it guards /v1/admin/*; the page asks for it.
	mux.Handle("GET /v1/deadletters", s.requireAdminToken(http.HandlerFunc(s.serveDeadLetters)))
	mux.HandleFunc("GET /v1/commands/rate", s.rates.serveHTTP)
	return nil
}

// renderIndex fills in what the page cannot ask the API for: the payment
// timeout, the default threshold for orders awaiting payment.
func renderIndex(assets fs.FS, paymentTimeout time.Duration) ([]byte, error) {
	if paymentTimeout <= 0 {
		paymentTimeout = defaultPaymentTimeout
	}
	tmpl, err := template.ParseFS(assets, "index.html")
	if err != nil {
		return nil, fmt.Errorf("operator page template: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, struct{ PaymentTimeout string }{paymentTimeout.String()}); err != nil {
		return nil, fmt.Errorf("operator page template: %w", err)
	}
	return b.Bytes(), nil
}

// onlyParams answers 400 naming the first query parameter the endpoint
// does not take, or one given twice or empty, as the query API does.
func onlyParams(w http.ResponseWriter, r *http.Request, endpoint string, allowed ...string) bool {
	for name, vs := range r.URL.Query() {
		switch {
		case !slices.Contains(allowed, name):
			writeFieldError(w, domain.CodeInvalidCommand, name, fmt.Sprintf("%s does not take the parameter %.64q", endpoint, name))
		case len(vs) != 1:
			writeFieldError(w, domain.CodeInvalidCommand, name, "is given more than once")
		case vs[0] == "":
			writeFieldError(w, domain.CodeInvalidCommand, name, "is empty; leave it out instead")
		default:
			continue
		}
		return false
	}
	return true
}

func writeFieldError(w http.ResponseWriter, code domain.Code, field, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(domain.HTTPStatus(code))
	_ = json.NewEncoder(w).Encode(map[string]any{"error": ordonats.ErrorBody{Code: string(code), Message: msg, Field: field}})
}
