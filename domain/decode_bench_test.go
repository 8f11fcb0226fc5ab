package domain

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// decodeCorpus is one order's life (placed with two lines, stock reserved,
// paid, shipped, delivered, a refund requested and completed) and a
// batched InventoryReserved of 32 orders, encoded as the store holds them.
func decodeCorpus(tb testing.TB) [][3][]byte {
	tb.Helper()
	at := time.Date(2026, 11, 24, 9, 30, 0, 123456789, time.UTC)
	meta := EventMeta{CommandID: "6f1d8a2e-1b7c-4e0a-9c55-0d3f1e2a4b6c", CorrelationID: "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a",
		CausationID: "9a1c2b3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d", OccurredAt: at}
	eur := Money{Amount: 2500, Currency: "EUR"}
	var orders []Reservation
	for i := range 32 {
		orders = append(orders, Reservation{OrderID: fmt.Sprintf("%08x-3f4a-4a53-9a7e-2f1f5d0c9b1a", i), Quantity: 1,
			CommandID: fmt.Sprintf("%08x-1b7c-4e0a-9c55-0d3f1e2a4b6c", i)})
	}
	var out [][3][]byte
	for _, d := range []EventData{
		OrderPlaced{OrderID: "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a", CustomerID: "c-1",
			Lines: []Line{{SKU: "sku-1", Quantity: 1, UnitPrice: 1250}, {SKU: "sku-2", Quantity: 1, UnitPrice: 1250}}, Total: eur},
		StockReserved{},
		PaymentSucceeded{PaymentID: "pi_3Nf", Amount: eur, Provider: "stripe"},
		OrderShipped{Carrier: "dhl", TrackingNumber: "JD0001"},
		OrderDelivered{},
		RefundRequested{RefundID: "r-1", Amount: eur, Reason: "damaged"},
		RefundCompleted{RefundID: "r-1", Amount: eur},
		InventoryReserved{SKU: "sku-1", Orders: orders},
	} {
		typ, data, md, err := EncodeEvent(Event{Type: d.EventType(), Data: d, Meta: meta})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, [3][]byte{[]byte(typ), data, md})
	}
	return out
}

// BenchmarkDecodeEvent decodes the corpus (payload and metadata) with the
// codec, and with encoding/json alone into the same types; one op is one
// event.
func BenchmarkDecodeEvent(b *testing.B) {
	corpus := decodeCorpus(b)
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := corpus[i%len(corpus)]
			if _, err := DecodeEvent(string(r[0]), r[1], r[2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	payload := map[string]func([]byte) error{}
	for _, r := range corpus {
		typ := string(r[0])
		payload[typ] = func(data []byte) error {
			v := newPayload(typ)
			return json.Unmarshal(data, v)
		}
	}
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := corpus[i%len(corpus)]
			var m wireMeta
			if err := json.Unmarshal(r[2], &m); err != nil {
				b.Fatal(err)
			}
			if err := payload[string(r[0])](r[1]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func newPayload(typ string) any {
	switch typ {
	case EvtOrderPlaced:
		return new(OrderPlaced)
	case EvtStockReserved:
		return new(StockReserved)
	case EvtPaymentSucceeded:
		return new(PaymentSucceeded)
	case EvtOrderShipped:
		return new(OrderShipped)
	case EvtOrderDelivered:
		return new(OrderDelivered)
	case EvtRefundRequested:
		return new(RefundRequested)
	case EvtRefundCompleted:
		return new(RefundCompleted)
	case EvtInventoryReserved:
		return new(InventoryReserved)
	}
	panic(typ)
}

// BenchmarkDecodeMeta decodes the corpus's metadata alone.
func BenchmarkDecodeMeta(b *testing.B) {
	md := decodeCorpus(b)[0][2]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m wireMeta
			if !parseWireMeta(md, &m) {
				b.Fatal("not read")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m wireMeta
			if err := json.Unmarshal(md, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
