package nats

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/domain"
)

// SubjectQueryPrefix is where the HTTP query API is also served over NATS:
// a request on ordo.query.v1.orders.<id> is GET /v1/orders/<id>, one on
// ordo.query.v1.payments is GET /v1/payments, and so on. The request body is
// the URL query string ("status=paid&limit=10"); the reply is the same JSON
// body, with the HTTP status in the Ordo-Status header.
const SubjectQueryPrefix = "ordo.query.v1."

// ServeHTTPQueries answers NATS requests with the read-only HTTP API h, so
// NATS clients get exactly what HTTP clients get. Several processes share
// the load through a queue group.
func ServeHTTPQueries(nc *natsgo.Conn, h http.Handler, log *slog.Logger) (*natsgo.Subscription, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := nc.QueueSubscribe(SubjectQueryPrefix+">", "ordo-queries", func(m *natsgo.Msg) {
		path := "/v1/" + strings.ReplaceAll(strings.TrimPrefix(m.Subject, SubjectQueryPrefix), ".", "/")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rec := &replyWriter{header: http.Header{}, status: http.StatusOK}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Path: path, RawQuery: string(m.Data)}).String(), nil)
		if err != nil {
			log.Debug("query over NATS is not a request", "subject", m.Subject, "err", err)
			rec.fail(domain.HTTPStatus(domain.CodeInvalidCommand), domain.CodeInvalidCommand, fmt.Sprintf("subject %s with request %q is not a query: %v", m.Subject, m.Data, err))
		} else {
			h.ServeHTTP(rec, req)
		}
		if rec.status >= 400 && !isJSON(rec.header) {
			// Only a route the API does not have answers in plain text
			// (net/http's own 404 and 405).
			rec.fail(rec.status, codeForStatus(rec.status), fmt.Sprintf("no query is served on %s (the queries are listed in the README, e.g. %sorders.<id>, %spayments)",
				m.Subject, SubjectQueryPrefix, SubjectQueryPrefix))
		}
		reply := natsgo.NewMsg(m.Reply)
		reply.Data = rec.body.Bytes()
		reply.Header.Set(HeaderStatus, strconv.Itoa(rec.status))
		if !reservedReplySubject(m.Reply) {
			_ = m.RespondMsg(reply)
		}
	})
	if err != nil {
		return nil, err
	}
	// Once the service says it serves, a query from any connection finds
	// the subscription: the server has it after the round trip.
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to NATS queries: %w", err)
	}
	return sub, nil
}

// isJSON reports whether a response says it is JSON.
func isJSON(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "application/json")
}

// codeForStatus is the error code a plain-text HTTP error stands for.
func codeForStatus(status int) domain.Code {
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return domain.CodeNotFound
	case http.StatusBadRequest:
		return domain.CodeInvalidCommand
	case http.StatusServiceUnavailable:
		return domain.CodeUnavailable
	}
	return domain.CodeInternal
}

// replyWriter collects a handler's response in memory.
type replyWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *replyWriter) Header() http.Header         { return w.header }
func (w *replyWriter) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *replyWriter) WriteHeader(status int)      { w.status = status }

// fail replaces the response with a JSON error like the API's own.
func (w *replyWriter) fail(status int, code domain.Code, message string) {
	w.status = status
	w.header.Set("Content-Type", "application/json")
	w.body.Reset()
	b, _ := json.Marshal(map[string]ErrorBody{"error": {Code: string(code), Message: message}})
	w.body.Write(b)
}
