package nats

import (
	"bytes"
	"encoding/json"

	"github.com/ordo-dev/ordo/jsonwire"
)

// The stock API's JSON (StockRequest, StockReply) is decoded through
// jsonwire, which reads plain JSON without reflecting on every value and
// leaves anything else to encoding/json, because a flash sale sends every
// reservation's request and reply through one process. Encoding is plain
// encoding/json. stock_wire_test.go holds the results equal to
// encoding/json's, also as fuzz targets.

// marshalStockRequest is json.Marshal(r).
func marshalStockRequest(r StockRequest) []byte {
	b, _ := json.Marshal(r) // a struct of strings and an int cannot fail
	return b
}

// decodeStockRequest reads a request body as the stock API always has: an
// empty body is an empty request; otherwise one JSON object with no
// unknown fields (json.Decoder with DisallowUnknownFields).
func decodeStockRequest(data []byte) (StockRequest, error) {
	var r StockRequest
	if jsonwire.TryUnmarshal(data, &r) || len(bytes.TrimSpace(data)) == 0 {
		return r, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	err := d.Decode(&r)
	return r, err
}

// marshalStockReply is json.Marshal(r).
func marshalStockReply(r StockReply) []byte {
	b, _ := json.Marshal(r) // strings, integers and a struct of strings cannot fail
	return b
}

// unmarshalStockReply is json.Unmarshal(data, r) into a zero r.
func unmarshalStockReply(data []byte, r *StockReply) error {
	return jsonwire.Unmarshal(data, r)
}
