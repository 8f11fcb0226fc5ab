package tests

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/logbuf"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// TestCommandLogLines: the log line about a refused command (a dead
// letter) carries its command ID, order ID and trace ID, the trace being
// the one its sender's traceparent header named.
func TestCommandLogLines(t *testing.T) {
	var out logbuf.Buffer
	cfg := config(t, t.TempDir())
	cfg.Logger = slog.New(slog.NewJSONHandler(&out, nil))
	s := start(t, cfg)
	ctx := ctxT(t)
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	orderID, commandID := uuid.NewString(), uuid.NewString()
	bad := natsgo.NewMsg(ordonats.CommandSubject(orderID, domain.CmdPlaceOrder))
	bad.Data = []byte(`{"order_id": 7}`)
	bad.Header.Set(ordonats.HeaderCommandID, commandID)
	bad.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if _, err := js.PublishMsg(ctx, bad); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "command dead-lettered" {
				continue
			}
			if m["command_id"] != commandID || m["order_id"] != orderID || m["trace_id"] != traceID || m["code"] != "invalid_command" {
				t.Fatalf("dead-letter line %s: want command_id %s, order_id %s, trace_id %s, code invalid_command", line, commandID, orderID, traceID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead-letter line was logged:\n%s", out.String())
		}
	}
}
