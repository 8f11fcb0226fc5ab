package domain

import (
	"fmt"
	"testing"
)

// BenchmarkDecideApply measures one command decided and folded on a loaded
// order: a failed payment attempt while awaiting payment, which the
// lifecycle accepts again and again (each with a fresh payment ID).
func BenchmarkDecideApply(b *testing.B) {
	o := fold(b, []Event{placed(), ev(StockReserved{})})
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%d", i)
	}
	meta := CommandMeta{CommandID: "c"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		events, err := o.Decide(FailPayment{Order: testOrder, PaymentID: ids[i], Reason: "declined"}, meta, t0)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range events {
			if err := o.Apply(e); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFold1000 folds a 1,000-event history: a paid order followed by
// refund requests and rejections.
func BenchmarkFold1000(b *testing.B) {
	history := paid()
	for i := 0; len(history) < 1000; i++ {
		id := fmt.Sprintf("r-%d", i)
		history = append(history, ev(RefundRequested{RefundID: id, Amount: eur(10), Reason: "x"}),
			ev(RefundRejected{RefundID: id, Reason: "no"}))
	}
	history = history[:1000]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := NewOrder(testOrder)
		for _, e := range history {
			if err := o.Apply(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(history)), "ns/event")
}

// memStore is the in-memory event store of the lifecycle benchmark: streams
// of events, loaded by folding and appended with an expected revision.
type memStore struct{ streams map[string][]Event }

func (s *memStore) load(id string) *Order {
	o := NewOrder(id)
	for _, e := range s.streams[id] {
		if err := o.Apply(e); err != nil {
			panic(err)
		}
	}
	return o
}

func (s *memStore) append(id string, expected int64, events []Event) error {
	if int64(len(s.streams[id]))-1 != expected {
		return fmt.Errorf("conflict")
	}
	s.streams[id] = append(s.streams[id], events...)
	return nil
}

// memStoreEncoded keeps events encoded as they are in the event store, so
// load and append pay for JSON as in production.
type memStoreEncoded struct{ streams map[string][][3][]byte }

func (s *memStoreEncoded) load(id string) *Order {
	o := NewOrder(id)
	for _, r := range s.streams[id] {
		e, err := DecodeEvent(string(r[0]), r[1], r[2])
		if err != nil {
			panic(err)
		}
		if err := o.Apply(e); err != nil {
			panic(err)
		}
	}
	return o
}

func (s *memStoreEncoded) append(id string, expected int64, events []Event) error {
	if int64(len(s.streams[id]))-1 != expected {
		return fmt.Errorf("conflict")
	}
	for _, e := range events {
		typ, data, meta, err := EncodeEvent(e)
		if err != nil {
			return err
		}
		s.streams[id] = append(s.streams[id], [3][]byte{[]byte(typ), data, meta})
	}
	return nil
}

type benchStore interface {
	load(id string) *Order
	append(id string, expected int64, events []Event) error
}

// lifecycleCommands is place, reserve-free pay, ship, deliver: the four
// commands of the lifecycle (stock is reserved by the saga, folded
// here as part of place).
func runLifecycle(b *testing.B, store benchStore) {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ids[i%len(ids)]
		if i%len(ids) == 0 && i > 0 {
			b.StopTimer()
			resetStore(store)
			b.StartTimer()
		}
		cmds := []Command{
			PlaceOrder{Order: id, CustomerID: "c", Currency: "EUR", Lines: []Line{{SKU: "a", Quantity: 2, UnitPrice: 500}}},
			MarkStockReserved{Order: id},
			ConfirmPayment{Order: id, PaymentID: "p", Amount: 1000},
			ShipOrder{Order: id, Carrier: "dhl", TrackingNumber: "T"},
			ConfirmDelivery{Order: id},
		}
		for j, cmd := range cmds {
			o := store.load(id)
			events, err := o.Decide(cmd, CommandMeta{CommandID: fmt.Sprint(j)}, t0)
			if err != nil {
				b.Fatal(err)
			}
			if err := store.append(id, o.Revision(), events); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*5), "ns/command")
}

func resetStore(s benchStore) {
	switch s := s.(type) {
	case *memStore:
		s.streams = map[string][]Event{}
	case *memStoreEncoded:
		s.streams = map[string][][3][]byte{}
	}
}

// BenchmarkLifecycle runs place, stock reserved, pay, ship, deliver per
// order on an in-memory store, loading the order by folding its stream
// before every command, and reports ns/command.
func BenchmarkLifecycle(b *testing.B) {
	b.Run("events", func(b *testing.B) { runLifecycle(b, &memStore{streams: map[string][]Event{}}) })
	b.Run("json", func(b *testing.B) { runLifecycle(b, &memStoreEncoded{streams: map[string][][3][]byte{}}) })
}
