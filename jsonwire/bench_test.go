package jsonwire

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// decodeCorpus is one order's life (placed with two lines, stock reserved,
// paid, shipped, delivered, a refund requested and completed) and a
// batched domain.InventoryReserved of 32 orders, encoded as the store holds them.
func decodeCorpus(tb testing.TB) [][3][]byte {
	tb.Helper()
	at := time.Date(2026, 11, 24, 9, 30, 0, 123456789, time.UTC)
	meta := domain.EventMeta{CommandID: "6f1d8a2e-1b7c-4e0a-9c55-0d3f1e2a4b6c", CorrelationID: "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a",
		CausationID: "9a1c2b3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d", OccurredAt: at}
	eur := domain.Money{Amount: 2500, Currency: "EUR"}
	var orders []domain.Reservation
	for i := range 32 {
		orders = append(orders, domain.Reservation{OrderID: fmt.Sprintf("%08x-3f4a-4a53-9a7e-2f1f5d0c9b1a", i), Quantity: 1,
			CommandID: fmt.Sprintf("%08x-1b7c-4e0a-9c55-0d3f1e2a4b6c", i)})
	}
	var out [][3][]byte
	for _, d := range []domain.EventData{
		domain.OrderPlaced{OrderID: "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a", CustomerID: "c-1",
			Lines: []domain.Line{{SKU: "sku-1", Quantity: 1, UnitPrice: 1250}, {SKU: "sku-2", Quantity: 1, UnitPrice: 1250}}, Total: eur},
		domain.StockReserved{},
		domain.PaymentSucceeded{PaymentID: "pi_3Nf", Amount: eur, Provider: "stripe"},
		domain.OrderShipped{Carrier: "dhl", TrackingNumber: "JD0001"},
		domain.OrderDelivered{},
		domain.RefundRequested{RefundID: "r-1", Amount: eur, Reason: "damaged"},
		domain.RefundCompleted{RefundID: "r-1", Amount: eur},
		domain.InventoryReserved{SKU: "sku-1", Orders: orders},
	} {
		typ, data, md, err := domain.EncodeEvent(domain.Event{Type: d.EventType(), Data: d, Meta: meta})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, [3][]byte{[]byte(typ), data, md})
	}
	return out
}

// BenchmarkDecodeEvent decodes the corpus (payload and metadata) with the
// event codec reading through this package, and with the domain's own
// codec (encoding/json); one op is one event.
func BenchmarkDecodeEvent(b *testing.B) {
	corpus := decodeCorpus(b)
	for _, c := range []struct {
		name   string
		decode func(string, []byte, []byte) (domain.Event, error)
	}{{"jsonwire", DecodeEvent}, {"encoding_json", domain.DecodeEvent}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r := corpus[i%len(corpus)]
				if _, err := c.decode(string(r[0]), r[1], r[2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// wireMeta has the shape of the metadata the codec writes.
type wireMeta struct {
	CommandID     string    `json:"command_id"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	Fingerprint   string    `json:"command_fingerprint,omitempty"`
	OccurredAt    time.Time `json:"occurred_at"`
	SchemaVersion int       `json:"schema_version"`
}

// BenchmarkDecodeMeta decodes the corpus's metadata alone.
func BenchmarkDecodeMeta(b *testing.B) {
	md := decodeCorpus(b)[0][2]
	for _, c := range []struct {
		name      string
		unmarshal func([]byte, any) error
	}{{"jsonwire", Unmarshal}, {"encoding_json", json.Unmarshal}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var m wireMeta
				if err := c.unmarshal(md, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
