package nats

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-dev/ordo/callbacksig"
	"github.com/ordo-dev/ordo/domain"
)

// The callback secret of the tests, and the real signer and verifier over it.
var (
	testSecret   = []byte("test-callback-secret")
	testKeys     = callbacksig.NewKeyring(map[string][][]byte{callbacksig.DefaultProvider: {testSecret}})
	testVerifier = callbacksig.Verifier{Keys: testKeys}
	testSigner   = callbacksig.Signer{Keys: testKeys}
)

// publishCallback publishes a PaymentCallback command as any NATS client
// does, with signature as its Ordo-Signature header (none if empty), and
// returns the reply's status and error.
func publishCallback(t *testing.T, nc *natsgo.Conn, orderID string, body []byte, signature string) (string, *ErrorBody) {
	t.Helper()
	replies, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	defer replies.Unsubscribe()
	m := natsgo.NewMsg(CommandSubject(orderID, domain.CmdPaymentCallback))
	m.Data = body
	id := uuid.NewString()
	m.Header.Set(HeaderCommandID, id)
	m.Header.Set(HeaderMsgID, id+".1")
	m.Header.Set(HeaderReplyTo, replies.Subject)
	if signature != "" {
		m.Header.Set(HeaderSignature, signature)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	r, err := replies.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no reply to the callback: %v", err)
	}
	var out Outcome
	if err := json.Unmarshal(r.Data, &out); err != nil {
		t.Fatalf("reply %s: %v", r.Data, err)
	}
	return r.Header.Get(HeaderStatus), out.Error
}

// TestPaymentCallbackSignatureOverNATS: a PaymentCallback published on
// its subject by any NATS client is executed only with a valid signature
// of its body; every other one is answered 401 unauthenticated, never
// reaches the executor, and is recorded as a dead letter.
func TestPaymentCallbackSignatureOverNATS(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &recording{answer: func(_ int, cmd Command, _ domain.Command) Outcome { return paid(cmd) }}
	runWorker(t, nc, exec, WorkerConfig{Callbacks: testVerifier})
	orderID := uuid.NewString()
	body := []byte(`{"order_id":"` + orderID + `","payment_id":"pi_sig","amount":2500,"currency":"EUR","status":"succeeded"}`)
	tampered := []byte(strings.Replace(string(body), "2500", "25", 1))
	now := time.Now()
	captured := callbacksig.Sign(now.Add(-10*time.Minute), body, testSecret)
	replayed := "t=" + strconv.FormatInt(now.Unix(), 10) + captured[strings.Index(captured, ","):]

	refused := []struct {
		name      string
		body      []byte
		signature string
	}{
		{"unsigned", body, ""},
		{"mis-signed", body, callbacksig.Sign(now, body, []byte("another secret"))},
		{"expired", body, captured},
		{"replayed: old signature, new timestamp", body, replayed},
		{"tampered body", tampered, callbacksig.Sign(now, body, testSecret)},
		{"malformed", body, "v1=123"},
	}
	for i, tt := range refused {
		status, e := publishCallback(t, nc, orderID, tt.body, tt.signature)
		if status != "401" || e == nil || e.Code != string(domain.CodeUnauthenticated) || e.Field != HeaderSignature {
			t.Fatalf("%s: got status %s, error %+v; want 401 unauthenticated on %s", tt.name, status, e, HeaderSignature)
		}
		if strings.Contains(e.Message, string(testSecret)) {
			t.Fatalf("%s: the refusal shows the secret: %s", tt.name, e.Message)
		}
		if n := len(exec.calls()); n != 0 {
			t.Fatalf("%s: the executor ran %d commands, want none", tt.name, n)
		}
		waitDeadLetters(t, nc, uint64(i+1))
	}
	status, e := publishCallback(t, nc, orderID, body, callbacksig.Sign(now, body, testSecret))
	if status != "200" || e != nil {
		t.Fatalf("correctly signed: got status %s, error %+v; want 200", status, e)
	}
	if n := len(exec.calls()); n != 1 {
		t.Fatalf("correctly signed: the executor ran %d commands, want 1", n)
	}
}

// waitDeadLetters waits until the dead-letter stream holds n messages.
func waitDeadLetters(t *testing.T, nc *natsgo.Conn, n uint64) {
	t.Helper()
	js, _ := jetstream.New(nc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := js.Stream(context.Background(), StreamDeadLetter)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err == nil && info.State.Msgs >= n {
			if info.State.Msgs > n {
				t.Fatalf("%d dead letters, want %d", info.State.Msgs, n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %v, want %d", info, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Workers given no verifier refuse every callback, signed or not: a
// service that cannot check signatures must not take payments.
func TestPaymentCallbackWithoutVerifierIsRefused(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &recording{answer: func(_ int, cmd Command, _ domain.Command) Outcome { return paid(cmd) }}
	runWorker(t, nc, exec, WorkerConfig{})
	c, _ := NewClient(nc, ClientOptions{CallbackSigner: testSigner})
	_, err := c.PaymentCallback(context.Background(), domain.PaymentCallback{Order: uuid.NewString(), PaymentID: "pi_4", Amount: 1, Currency: "EUR", Status: "succeeded"})
	if !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("got %v, want unauthenticated", err)
	}
	if n := len(exec.calls()); n != 0 {
		t.Fatalf("the executor ran %d commands, want none", n)
	}
}

// A client without a signer does not send callbacks at all.
func TestPaymentCallbackClientWithoutSigner(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &recording{answer: func(_ int, cmd Command, _ domain.Command) Outcome { return paid(cmd) }}
	runWorker(t, nc, exec, WorkerConfig{Callbacks: testVerifier})
	c, _ := NewClient(nc, ClientOptions{})
	_, err := c.PaymentCallback(context.Background(), domain.PaymentCallback{Order: uuid.NewString(), PaymentID: "pi_5", Amount: 1, Currency: "EUR", Status: "succeeded"})
	if err == nil || !strings.Contains(err.Error(), "CallbackSigner") {
		t.Fatalf("got %v, want a refusal asking for a CallbackSigner", err)
	}
	if n := len(exec.calls()); n != 0 {
		t.Fatalf("the executor ran %d commands, want none", n)
	}
}

// TestPaymentCallbackCheckedAsOfStorage: the workers judge a callback's
// timestamp against when JetStream stored it, not when they get to it, so
// a callback accepted in time is applied after the workers were down
// longer than the tolerance (an outage, a restart).
func TestPaymentCallbackCheckedAsOfStorage(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	replies, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	orderID := uuid.NewString()
	body := []byte(`{"order_id":"` + orderID + `","payment_id":"pi_late","amount":2500,"currency":"EUR","status":"succeeded"}`)
	m := natsgo.NewMsg(CommandSubject(orderID, domain.CmdPaymentCallback))
	m.Data = body
	m.Header.Set(HeaderCommandID, "cb-stored")
	m.Header.Set(HeaderMsgID, "cb-stored.1")
	m.Header.Set(HeaderReplyTo, replies.Subject)
	m.Header.Set(HeaderSignature, callbacksig.Sign(time.Now(), body, testSecret))
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	const tolerance = time.Second
	stored, err := js.Stream(ctx, StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stored.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	// The workers start once the callback is older than the tolerance.
	time.Sleep(time.Until(raw.Time.Add(2 * tolerance)))
	exec := &recording{answer: func(_ int, cmd Command, _ domain.Command) Outcome { return paid(cmd) }}
	runWorker(t, nc, exec, WorkerConfig{Callbacks: callbacksig.Verifier{Keys: testKeys, Tolerance: tolerance}})
	r, err := replies.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	if st := r.Header.Get(HeaderStatus); st != "200" {
		t.Fatalf("a callback stored in time, processed later: status %s %s, want 200", st, r.Data)
	}
	if n := len(exec.calls()); n != 1 {
		t.Fatalf("the executor ran %d commands, want 1", n)
	}
}
