package nats

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/domain"
)

// recording is an executor that decodes every command as the real one
// does and answers with what answer returns, keeping what it saw.
type recording struct {
	mu     sync.Mutex
	seen   []Command
	answer func(n int, cmd Command, decoded domain.Command) Outcome
}

func (r *recording) Execute(_ context.Context, cmd Command) Outcome {
	r.mu.Lock()
	r.seen = append(r.seen, cmd)
	n := len(r.seen)
	r.mu.Unlock()
	decoded, err := domain.DecodeCommand(cmd.Type, cmd.Body)
	if err != nil {
		return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{}, Error: &ErrorBody{Code: string(domain.CodeOf(err)), Message: err.Error()}}
	}
	return r.answer(n, cmd, decoded)
}

// Fingerprint refuses what does not decode, as the real one does.
func (r *recording) Fingerprint(cmd Command) (string, error) {
	if _, err := domain.DecodeCommand(cmd.Type, cmd.Body); err != nil {
		return "", err
	}
	return rawFingerprint(cmd), nil
}

func (r *recording) calls() []Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Command(nil), r.seen...)
}

func paid(cmd Command) Outcome {
	return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Revision: 2, Position: 7, Events: []string{"PaymentSucceeded"}, State: "paid"}
}

func TestPaymentCallbackIsOneCommandWithTheDerivedID(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &recording{answer: func(_ int, cmd Command, decoded domain.Command) Outcome {
		if _, ok := decoded.(domain.ConfirmPayment); !ok {
			t.Errorf("the worker decoded %T, want ConfirmPayment", decoded)
		}
		return paid(cmd)
	}}
	runWorker(t, nc, exec, WorkerConfig{Callbacks: testVerifier})
	c, err := NewClient(nc, ClientOptions{CallbackSigner: testSigner})
	if err != nil {
		t.Fatal(err)
	}
	cb := domain.PaymentCallback{Order: uuid.NewString(), PaymentID: "pi_1", Amount: 2500, Currency: "EUR", Status: "succeeded", Provider: "stripe"}

	var wg sync.WaitGroup
	outs := make([]Outcome, 6)
	errs := make([]error, len(outs))
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = c.PaymentCallback(context.Background(), cb)
		}()
	}
	wg.Wait()
	again, err := c.PaymentCallback(context.Background(), cb)
	outs, errs = append(outs, again), append(errs, err)
	duplicates := 0
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("callback %d: %v", i, errs[i])
		}
		if out.Duplicate {
			duplicates++
		}
		out.Duplicate = false
		if want := paid(Command{ID: CallbackCommandID(cb), OrderID: cb.Order}); !reflect.DeepEqual(out, want) {
			t.Fatalf("callback %d: got %+v, want the first outcome %+v", i, out, want)
		}
	}
	if duplicates != len(outs)-1 {
		t.Fatalf("%d of %d answers marked duplicate, want %d", duplicates, len(outs), len(outs)-1)
	}
	calls := exec.calls()
	if len(calls) != 1 {
		t.Fatalf("the workers executed %d commands, want 1", len(calls))
	}
	if got := calls[0]; got.Type != domain.CmdPaymentCallback || got.ID != CallbackCommandID(cb) || got.OrderID != cb.Order {
		t.Fatalf("executed %s %s for %s, want PaymentCallback %s for %s", got.Type, got.ID, got.OrderID, CallbackCommandID(cb), cb.Order)
	}
}

func TestCallbackCommandID(t *testing.T) {
	order := "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a"
	cb := domain.PaymentCallback{Order: order, PaymentID: "pi_123", Amount: 1000, Currency: "EUR", Status: "succeeded", Provider: "stripe"}
	// Computed independently, as README tells non-Go clients to: Python's
	// uuid.uuid5 over the same namespace and name.
	if got, want := CallbackCommandID(cb), "ff57958f-e367-54c5-ae0f-9a5e130313f3"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	same := cb
	same.Amount, same.Reason = 999, "ignored"
	if CallbackCommandID(same) != CallbackCommandID(cb) {
		t.Fatal("the same payment report gave two command IDs")
	}
	other := cb
	other.Status = "failed"
	if CallbackCommandID(other) == CallbackCommandID(cb) {
		t.Fatal("a success and a failure of one payment gave the same command ID")
	}
}

// A callback refused without effect (the order could not take the payment
// yet) is executed again when the provider retries, under a fresh ID.
func TestPaymentCallbackRefusedForNowIsRetried(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &recording{answer: func(n int, cmd Command, _ domain.Command) Outcome {
		if n == 1 {
			return Outcome{CommandID: cmd.ID, OrderID: cmd.OrderID, Events: []string{},
				Error: &ErrorBody{Code: string(domain.CodeIllegalTransition), Message: "ConfirmPayment is not allowed while the order is placed"}}
		}
		return paid(cmd)
	}}
	runWorker(t, nc, exec, WorkerConfig{Callbacks: testVerifier})
	c, _ := NewClient(nc, ClientOptions{CallbackSigner: testSigner})
	cb := domain.PaymentCallback{Order: uuid.NewString(), PaymentID: "pi_2", Amount: 2500, Currency: "EUR", Status: "succeeded"}
	if _, err := c.PaymentCallback(context.Background(), cb); !errors.Is(err, domain.ErrIllegalTransition) {
		t.Fatalf("first attempt: got %v, want illegal_transition", err)
	}
	out, err := c.PaymentCallback(context.Background(), cb)
	if err != nil || len(out.Events) != 1 {
		t.Fatalf("retry: got %+v, %v; want it executed and paid", out, err)
	}
	calls := exec.calls()
	if len(calls) != 2 || calls[1].ID == CallbackCommandID(cb) || !strings.HasPrefix(calls[1].ID, CallbackCommandID(cb)+"-") || !validCommandID(calls[1].ID) {
		t.Fatalf("executed %d commands (%v), want the retry under a fresh ID derived from %s", len(calls), calls, CallbackCommandID(cb))
	}
}

func TestPaymentCallbackInvalidIsRefusedBeforeSending(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	exec := &recording{answer: func(_ int, cmd Command, _ domain.Command) Outcome { return paid(cmd) }}
	runWorker(t, nc, exec, WorkerConfig{Callbacks: testVerifier})
	c, _ := NewClient(nc, ClientOptions{CallbackSigner: testSigner})
	_, err := c.PaymentCallback(context.Background(), domain.PaymentCallback{Order: uuid.NewString(), PaymentID: "pi_3", Amount: 1, Currency: "EUR", Status: "refunded"})
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInvalidCommand || de.Field != "status" {
		t.Fatalf("got %v, want invalid_command on status", err)
	}
	if n := len(exec.calls()); n != 0 {
		t.Fatalf("an invalid callback reached the workers (%d commands)", n)
	}
}
