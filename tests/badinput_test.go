package tests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ordonats "github.com/ordo-dev/ordo/nats"

	"github.com/ordo-dev/ordo/eventually"
)

// TestBadInput publishes malformed commands the way a non-Go client might.
// Each gets an error reply with a stable code, is recorded in the
// dead-letter stream with the reason, is not redelivered, and appends nothing.
func TestBadInput(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	ctx := ctxT(t)
	js, err := jetstream.New(s.nc)
	if err != nil {
		t.Fatal(err)
	}
	known := paidOrder(t, s)
	unknown := uuid.NewString()
	tests := []struct {
		name, subject, commandID, body string
		code, field                    string
	}{
		{"malformed JSON", ordonats.CommandSubject(unknown, "PlaceOrder"), "bad-json", `{"order_id":`, "invalid_command", ""},
		{"unknown command type", ordonats.CommandSubject(known, "LaunchRocket"), "bad-type", `{}`, "unknown_command", ""},
		{"missing field", ordonats.CommandSubject(known, "ShipOrder"), "bad-missing", `{"order_id":"` + known + `","carrier":"dhl"}`, "invalid_command", "tracking_number"},
		{"wrong type", ordonats.CommandSubject(known, "RequestRefund"), "bad-wrongtype", `{"order_id":"` + known + `","refund_id":"r","amount":"lots","reason":"x"}`, "invalid_command", "amount"},
		{"oversized payload", ordonats.CommandSubject(known, "CancelOrder"), "bad-big", `{"order_id":"` + known + `","reason":"` + strings.Repeat("x", 70<<10) + `"}`, "payload_too_large", ""},
		{"unknown order", ordonats.CommandSubject(unknown, "ShipOrder"), "bad-unknown", `{"order_id":"` + unknown + `","carrier":"dhl","tracking_number":"1"}`, "not_found", ""},
		{"invalid command ID", ordonats.CommandSubject(known, "ConfirmDelivery"), "bad id with spaces", `{"order_id":"` + known + `"}`, "invalid_command", ordonats.HeaderCommandID},
		{"body for another order", ordonats.CommandSubject(known, "ConfirmDelivery"), "bad-mismatch", `{"order_id":"` + unknown + `"}`, "invalid_command", "order_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inbox := s.nc.NewInbox()
			sub, err := s.nc.SubscribeSync(inbox)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			m := natsgo.NewMsg(tt.subject)
			m.Data = []byte(tt.body)
			m.Header.Set(ordonats.HeaderMsgID, uuid.NewString())
			m.Header.Set(ordonats.HeaderCommandID, tt.commandID)
			m.Header.Set(ordonats.HeaderReplyTo, inbox)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			reply, err := sub.NextMsg(20 * time.Second)
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			var out ordonats.Outcome
			if err := json.Unmarshal(reply.Data, &out); err != nil || out.Error == nil {
				t.Fatalf("reply %s is not an error outcome (%v)", reply.Data, err)
			}
			if out.Error.Code != tt.code || out.Error.Field != tt.field {
				t.Fatalf("got code %q field %q (%s), want %q %q", out.Error.Code, out.Error.Field, out.Error.Message, tt.code, tt.field)
			}
			if st := reply.Header.Get(ordonats.HeaderStatus); st == "" || st == "200" {
				t.Fatalf("reply status header %q, want the error's status", st)
			}
			dead := waitDeadLetter(t, js, tt.commandID)
			if dead.Header.Get(ordonats.HeaderDeadCode) != tt.code || dead.Header.Get(ordonats.HeaderDeadReason) == "" {
				t.Fatalf("dead letter headers %v", dead.Header)
			}
		})
	}
	if evs := streamEvents(t, s, unknown); len(evs) != 0 {
		t.Fatalf("bad input appended %d events to the unknown order", len(evs))
	}
	if evs := streamEvents(t, s, known); len(evs) != 3 {
		t.Fatalf("bad input changed the known order: %d events, want 3", len(evs))
	}
	// Terminated, not redelivered: the consumer has nothing pending.
	eventually.NoError(t, 10*time.Second, "the workers' consumer to have nothing pending", func() error {
		cons, err := js.Consumer(ctx, ordonats.StreamCommands, ordonats.ConsumerWorkers)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0 {
			return nil
		}
		return fmt.Errorf("%d pending acks, %d pending, %d redelivered", info.NumAckPending, info.NumPending, info.NumRedelivered)
	})
}

// waitDeadLetter finds the dead letter of a command ID.
func waitDeadLetter(tb testing.TB, js jetstream.JetStream, commandID string) *jetstream.RawStreamMsg {
	tb.Helper()
	ctx := ctxT(tb)
	stream, err := js.Stream(ctx, ordonats.StreamDeadLetter)
	if err != nil {
		tb.Fatal(err)
	}
	var found *jetstream.RawStreamMsg
	eventually.True(tb, 10*time.Second, fmt.Sprintf("the dead letter of command %q", commandID), func() bool {
		info, err := stream.Info(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err == nil && m.Header.Get(ordonats.HeaderCommandID) == commandID {
				found = m
				return true
			}
		}
		return false
	})
	return found
}
