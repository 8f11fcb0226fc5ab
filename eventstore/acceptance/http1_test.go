package acceptance

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/ordo-dev/ordo/eventstore/esdbtest"
)

// TestHTTP1RequestGetsAClearAnswer: EventStoreDB's HTTP API shares the gRPC
// port; the embedded store does not serve it, and an HTTP/1.1 request
// (what the client's HTTP-only calls and curl send) gets a readable 501
// instead of HTTP/2 frames, while gRPC keeps working on the same port.
func TestHTTP1RequestGetsAClearAnswer(t *testing.T) {
	if os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("a real EventStoreDB serves its HTTP API")
	}
	srv := startEmbedded(t, t.TempDir(), 0)
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, req := range []struct{ method, path string }{
		{"GET", "/subscriptions"},
		{"POST", "/subscriptions/orders/group/replayParked"},
		{"GET", "/health/live"},
	} {
		r, err := http.NewRequest(req.method, "http://"+srv.Addr().String()+req.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v, want an HTTP/1.1 answer", req.method, req.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(body), "gRPC") || !strings.Contains(string(body), req.path) {
			t.Fatalf("%s %s: %d %q, want 501 explaining that only gRPC is served", req.method, req.path, resp.StatusCode, body)
		}
	}
	c := esdbtest.Connect(t, srv.URL())
	appendOK(t, c, name("after-http"), esdb.NoStream{}, events(1)...)
}
