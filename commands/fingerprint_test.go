package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/domain"
)

// fingerprinted is req as a transport sends it: with its fingerprint.
func fingerprinted(tb testing.TB, req commands.Request) commands.Request {
	tb.Helper()
	fp, err := commands.Fingerprint(req)
	if err != nil {
		tb.Fatal(err)
	}
	req.Fingerprint = fp
	return req
}

func TestFingerprint(t *testing.T) {
	order, other := uuid.NewString(), uuid.NewString()
	raw := func(typ, orderID, body string) commands.Request {
		return commands.Request{CommandID: "c-1", CommandType: typ, OrderID: orderID, Body: []byte(body)}
	}
	pay := `{"order_id":"` + order + `","payment_id":"p-1","amount":2500}`
	base := raw(domain.CmdConfirmPayment, order, pay)
	for _, tt := range []struct {
		name string
		req  commands.Request
		same bool
	}{
		{"the same bytes", raw(domain.CmdConfirmPayment, order, pay), true},
		{"keys reordered, spaced", raw(domain.CmdConfirmPayment, order, ` { "amount" : 2500, "payment_id":"p-1", "order_id":"`+order+`" }`), true},
		{"an optional field spelled out empty", raw(domain.CmdConfirmPayment, order, `{"order_id":"`+order+`","payment_id":"p-1","amount":2500,"currency":""}`), true},
		{"another amount", raw(domain.CmdConfirmPayment, order, `{"order_id":"`+order+`","payment_id":"p-1","amount":2600}`), false},
		{"another order", raw(domain.CmdConfirmPayment, other, `{"order_id":"`+other+`","payment_id":"p-1","amount":2500}`), false},
		{"another type, the same body", raw(domain.CmdConfirmDelivery, order, `{"order_id":"`+order+`"}`), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, errA := commands.Fingerprint(base)
			b, errB := commands.Fingerprint(tt.req)
			if errA != nil || errB != nil || len(a) != 32 {
				t.Fatalf("fingerprints %q %q: %v %v", a, b, errA, errB)
			}
			if (a == b) != tt.same {
				t.Fatalf("same fingerprint: got %t, want %t", a == b, tt.same)
			}
		})
	}
	// What Execute would refuse as malformed has no fingerprint.
	for _, req := range []commands.Request{
		raw(domain.CmdConfirmPayment, order, `{"order_id":`),
		raw("Nope", order, `{}`),
		raw(domain.CmdConfirmPayment, other, pay), // addressed to another order than its body
	} {
		if _, err := commands.Fingerprint(req); !errors.Is(err, domain.ErrInvalidCommand) && !errors.Is(err, domain.ErrUnknownCommand) {
			t.Errorf("%s %s: got %v, want the refusal Execute gives", req.CommandType, req.Body, err)
		}
	}
}

// TestCommandIDNamesOneCommandInItsOrder: the order keeps each command's
// fingerprint in its events; a later command with another fingerprint
// under an applied command ID is refused, the same command is a duplicate,
// and commands without a fingerprint (the service's own, or events
// written before fingerprints) are recognised by their command ID alone.
func TestCommandIDNamesOneCommandInItsOrder(t *testing.T) {
	store := serve.CommandStore{Store: openStore(t)}
	svc := commands.New(store, commands.Options{})
	ctx := context.Background()
	order := uuid.NewString()
	place := domain.PlaceOrder{Order: order, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: "s", Quantity: 1, UnitPrice: 1000}}}
	for _, r := range []commands.Request{
		fingerprinted(t, request(t, "place", place)),
		request(t, "reserve", domain.MarkStockReserved{Order: order}), // as the saga sends it
	} {
		if res := svc.Execute(ctx, r); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	pay := fingerprinted(t, request(t, "pay", domain.ConfirmPayment{Order: order, PaymentID: "p", Amount: 1000}))
	first := svc.Execute(ctx, pay)
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	fresh := commands.New(store, commands.Options{}) // reads the stream: nothing cached
	for _, tt := range []struct {
		name     string
		req      commands.Request
		reused   bool
		revision int64 // the revision a duplicate reports
	}{
		{"the same command", pay, false, first.Revision},
		{"another type", fingerprinted(t, request(t, "pay", domain.CancelOrder{Order: order, Reason: "x"})), true, 0},
		{"other content", fingerprinted(t, request(t, "pay", domain.ConfirmPayment{Order: order, PaymentID: "p2", Amount: 1000})), true, 0},
		{"no fingerprint", request(t, "pay", domain.CancelOrder{Order: order, Reason: "x"}), false, first.Revision},
		{"applied without one", fingerprinted(t, request(t, "reserve", domain.MarkStockReserved{Order: order})), false, 1},
	} {
		for name, s := range map[string]*commands.Service{"cached": svc, "read": fresh} {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				res := s.Execute(ctx, tt.req)
				if tt.reused {
					if !errors.Is(res.Err, domain.ErrCommandIDReused) || len(res.Events) != 0 {
						t.Fatalf("got %+v, want command_id_reused", res)
					}
					return
				}
				if res.Err != nil || !res.Duplicate || res.Revision != tt.revision {
					t.Fatalf("got %+v, want a duplicate at revision %d", res, tt.revision)
				}
			})
		}
	}
	var n int
	if err := store.ReadStream(ctx, commands.StreamName(order), 0, func(commands.StoredEvent) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("the order has %d events (%v), want 3", n, err)
	}
}

// TestDecodedOnce: a request carrying the command FingerprintCommand
// decoded (Request.Decoded) has the same fingerprint and the same outcome
// as one decoded from its body, and is still held to the order it was
// addressed to.
func TestDecodedOnce(t *testing.T) {
	svc := commands.New(serve.CommandStore{Store: openStore(t)}, commands.Options{})
	ctx := context.Background()
	order, other := uuid.NewString(), uuid.NewString()
	place := request(t, "place-decoded", domain.PlaceOrder{Order: order, CustomerID: "c", Currency: "EUR", Lines: []domain.Line{{SKU: "s", Quantity: 2, UnitPrice: 5}}})
	want, err := commands.Fingerprint(place)
	if err != nil {
		t.Fatal(err)
	}
	fp, decoded, err := commands.FingerprintCommand(place)
	if err != nil || fp != want {
		t.Fatalf("FingerprintCommand = %q, %v; want %q", fp, err, want)
	}
	if p, ok := decoded.(domain.PlaceOrder); !ok || p.Order != order || len(p.Lines) != 1 || p.Lines[0].Quantity != 2 {
		t.Fatalf("decoded %#v, want the PlaceOrder of order %s", decoded, order)
	}
	place.Fingerprint, place.Decoded = fp, decoded
	first := svc.Execute(ctx, place)
	if first.Err != nil || len(first.Events) != 1 || first.Events[0] != domain.EvtOrderPlaced {
		t.Fatalf("PlaceOrder with its decoded command: %+v", first)
	}
	place.Decoded = nil // the same command, decoded from its body: its first outcome
	if again := svc.Execute(ctx, place); again.Err != nil || !again.Duplicate || again.Revision != first.Revision {
		t.Fatalf("the same command decoded from its body: %+v, want a duplicate of %+v", again, first)
	}
	misrouted := request(t, "cancel-decoded", domain.CancelOrder{Order: order, Reason: "r"})
	_, misrouted.Decoded, _ = commands.FingerprintCommand(misrouted)
	misrouted.OrderID = other
	if res := svc.Execute(ctx, misrouted); !errors.Is(res.Err, domain.ErrInvalidCommand) {
		t.Fatalf("a decoded command addressed to another order: %v, want invalid_command", res.Err)
	}
}
