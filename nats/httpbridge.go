package nats

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
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
	return nc.QueueSubscribe(SubjectQueryPrefix+">", "ordo-queries", func(m *natsgo.Msg) {
		path := "/v1/" + strings.ReplaceAll(strings.TrimPrefix(m.Subject, SubjectQueryPrefix), ".", "/")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Path: path, RawQuery: string(m.Data)}).String(), nil)
		if err != nil {
			log.Warn("query over NATS", "subject", m.Subject, "err", err)
			return
		}
		rec := &replyWriter{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, req)
		reply := natsgo.NewMsg(m.Reply)
		reply.Data = rec.body.Bytes()
		reply.Header.Set(HeaderStatus, strconv.Itoa(rec.status))
		_ = m.RespondMsg(reply)
	})
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
