package nats

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ordo-dev/ordo/domain"
)

// BenchmarkStockWire measures each of the stock API's four JSON steps for
// one reservation, as the API does them and with encoding/json alone.
func BenchmarkStockWire(b *testing.B) {
	req := StockRequest{CommandID: "6f1d8a2e-1b7c-4e0a-9c55-0d3f1e2a4b6c", OrderID: "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a", Quantity: 1}
	reply := StockReply{StockView: domain.StockView{SKU: "bench-hot-1a2b3c4d", OnHand: 1_000_000_000, Reserved: 123456, Available: 999_876_544, Revision: 4242},
		CommandID: req.CommandID, Events: []string{domain.EvtInventoryReserved}, Position: 987654}
	reqBody, _ := json.Marshal(req)
	replyBody, _ := json.Marshal(reply)
	jsonDecodeRequest := func(data []byte) (StockRequest, error) {
		var r StockRequest
		d := json.NewDecoder(bytes.NewReader(data))
		d.DisallowUnknownFields()
		err := d.Decode(&r)
		return r, err
	}
	steps := []struct {
		name       string
		api, plain func() error
	}{
		{"marshal_request", func() error { marshalStockRequest(req); return nil }, func() error { _, err := json.Marshal(req); return err }},
		{"decode_request", func() error { _, err := decodeStockRequest(reqBody); return err }, func() error { _, err := jsonDecodeRequest(reqBody); return err }},
		{"marshal_reply", func() error { marshalStockReply(reply); return nil }, func() error { _, err := json.Marshal(reply); return err }},
		{"unmarshal_reply", func() error { var r StockReply; return unmarshalStockReply(replyBody, &r) }, func() error { var r StockReply; return json.Unmarshal(replyBody, &r) }},
	}
	for _, s := range steps {
		for _, impl := range []struct {
			name string
			fn   func() error
		}{{"api", s.api}, {"encoding_json", s.plain}} {
			b.Run(s.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
