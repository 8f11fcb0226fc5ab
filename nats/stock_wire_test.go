package nats

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
)

// stockRequests and stockReplies cover the layouts the fast paths take and
// the values that must leave them for encoding/json.
var stockRequests = []StockRequest{
	{},
	{CommandID: "c"},
	{OrderID: "o"},
	{Quantity: -1},
	{CommandID: "6f1d8a2e-1b7c-4e0a-9c55-0d3f1e2a4b6c", OrderID: "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a", Quantity: 1},
	{CommandID: "c", Quantity: math.MaxInt64},
	{OrderID: "o", Quantity: math.MinInt64},
	{CommandID: `quote"and\backslash`, OrderID: "<&>", Quantity: 3},
	{CommandID: "ünïcode", OrderID: "tab\there"},
	{CommandID: "\x7f", OrderID: "\xff\xfe"},
	{CommandID: "line\u2028sep"},
}

var stockReplies = []StockReply{
	{},
	{StockView: domain.StockView{SKU: "s", OnHand: 1_000_000_000, Reserved: 1, Available: 999_999_999, Revision: 42},
		CommandID: "6f1d8a2e-1b7c-4e0a-9c55-0d3f1e2a4b6c", Events: []string{domain.EvtInventoryReserved}, Position: 123456},
	{StockView: domain.StockView{SKU: "s", OnHand: math.MinInt64, Reserved: math.MaxInt64, Available: -1, Revision: -1}, Position: math.MaxUint64},
	{StockView: domain.StockView{SKU: "s"}, CommandID: "c", Events: []string{"a", "b", "c"}},
	{StockView: domain.StockView{SKU: "s"}, Events: []string{}},
	{StockView: domain.StockView{SKU: "s<>"}, CommandID: `"`},
	{StockView: domain.StockView{SKU: "s"}, Events: []string{"\u00e9"}},
	{Error: &ErrorBody{Code: "out_of_stock", Message: "s has 0 available, the order asks for 1", Field: "quantity"}},
	{StockView: domain.StockView{SKU: "s"}, Error: &ErrorBody{Code: "unavailable", Message: "retry"}},
}

// TestStockWireEqualsEncodingJSON: what the stock API writes it reads
// back as encoding/json does, taking the fast path where the JSON is plain;
// bodies a client may send are read as the API always read them.
func TestStockWireEqualsEncodingJSON(t *testing.T) {
	fastRequests, fastReplies := 0, 0
	for _, r := range stockRequests {
		body := marshalStockRequest(r)
		if jsonwire.TryUnmarshal(body, new(StockRequest)) {
			fastRequests++
		}
		checkStockRequestDecode(t, body)
	}
	for _, r := range stockReplies {
		body := marshalStockReply(r)
		if jsonwire.TryUnmarshal(body, new(StockReply)) {
			fastReplies++
		}
		checkStockReplyDecode(t, body)
	}
	// The fast path is taken for everything plain above: not for escaped
	// or non-ASCII strings (encoding/json escapes <, > and &), nor for
	// replies with an error (a pointer it leaves to encoding/json).
	if fastRequests != 7 || fastReplies != 6 {
		t.Fatalf("fast path read %d requests and %d replies, want 7 and 6", fastRequests, fastReplies)
	}
	for _, body := range []string{"", "  ", "null", `{"command_id":"c","quantity":2}`, ` {"command_id":"c"}`, `{"Command_ID":"c"}`,
		`{"command_id":"c","command_id":"d"}`, `{"quantity":01}`, `{"quantity":-0}`, `{"quantity":1.0}`, `{"quantity":99999999999999999999}`,
		`{"order_id":"o","command_id":"c"}`, `{"command_id":"c"} trailing`, `{"command_id":""}`, `{"unknown":1}`, `{"command_id":"c",}`, `[]`, `{`} {
		checkStockRequestDecode(t, []byte(body))
	}
	for _, body := range []string{`{"sku":"s","on_hand":1,"reserved":0,"available":1,"revision":0}`, `{"sku":"s","on_hand":01,"reserved":0,"available":1,"revision":0}`,
		`{"sku":"s","on_hand":1,"reserved":0,"available":1,"revision":0,"events":[]}`, `{"sku":"s","on_hand":1,"reserved":0,"available":1,"revision":0,"position":0}`,
		`{"sku":"s","on_hand":1,"reserved":0,"available":1,"revision":0,"position":-1}`, `{"sku":"s","on_hand":-9223372036854775809,"reserved":0,"available":1,"revision":0}`,
		`{"revision":3,"sku":"s","error":null}`, `{"sku":"s","error":{"code":"x","message":"y"}}`} {
		checkStockReplyDecode(t, []byte(body))
	}
}

// checkStockRequestDecode holds decodeStockRequest to the decoding the
// stock API always did; and the fast path, when it reads body, to the same.
func checkStockRequestDecode(t testing.TB, body []byte) {
	t.Helper()
	var want StockRequest
	var wantErr error
	if len(bytes.TrimSpace(body)) > 0 {
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		wantErr = d.Decode(&want)
	}
	got, err := decodeStockRequest(body)
	if (err == nil) != (wantErr == nil) || err == nil && got != want {
		t.Fatalf("decode %q: got %+v, %v; want %+v, %v", body, got, err, want, wantErr)
	}
	var fast StockRequest
	if jsonwire.TryUnmarshal(body, &fast) && (wantErr != nil || fast != want) {
		t.Fatalf("fast path read %q as %+v; encoding/json: %+v, %v", body, fast, want, wantErr)
	}
}

// checkStockReplyDecode holds unmarshalStockReply, and the fast path when
// it reads body, to json.Unmarshal.
func checkStockReplyDecode(t testing.TB, body []byte) {
	t.Helper()
	var want StockReply
	wantErr := json.Unmarshal(body, &want)
	var got StockReply
	err := unmarshalStockReply(body, &got)
	if (err == nil) != (wantErr == nil) || err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decode %q: got %+v, %v; want %+v, %v", body, got, err, want, wantErr)
	}
	var fast StockReply
	if jsonwire.TryUnmarshal(body, &fast) && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("fast path read %q as %+v; encoding/json: %+v, %v", body, fast, want, wantErr)
	}
}

// FuzzStockRequestWire: request bodies, written by the API or arbitrary,
// decode as the stock API always decoded them.
func FuzzStockRequestWire(f *testing.F) {
	for _, r := range stockRequests {
		f.Add(r.CommandID, r.OrderID, r.Quantity, marshalStockRequest(r))
	}
	f.Add("", "", int64(0), []byte(`{"command_id":"c","order_id":"o","quantity":1}`))
	f.Fuzz(func(t *testing.T, commandID, orderID string, quantity int64, body []byte) {
		r := StockRequest{CommandID: commandID, OrderID: orderID, Quantity: quantity}
		checkStockRequestDecode(t, marshalStockRequest(r))
		checkStockRequestDecode(t, body)
	})
}

// FuzzStockReplyWire: reply bodies, written by the API or arbitrary, decode
// as json.Unmarshal decodes them.
func FuzzStockReplyWire(f *testing.F) {
	for _, r := range stockReplies {
		var ev string
		if len(r.Events) > 0 {
			ev = r.Events[0]
		}
		f.Add(r.SKU, r.OnHand, r.Revision, r.CommandID, ev, uint8(len(r.Events)), r.Position, r.Error != nil, marshalStockReply(r))
	}
	f.Fuzz(func(t *testing.T, sku string, onHand, revision int64, commandID, event string, events uint8, position uint64, failed bool, body []byte) {
		r := StockReply{StockView: domain.StockView{SKU: sku, OnHand: onHand, Reserved: revision / 3, Available: onHand - revision/3, Revision: revision},
			CommandID: commandID, Position: position}
		for i := range events % 4 {
			r.Events = append(r.Events, event[:len(event)*int(i)/3])
		}
		if failed {
			r.Error = &ErrorBody{Code: commandID, Message: event}
		}
		checkStockReplyDecode(t, marshalStockReply(r))
		checkStockReplyDecode(t, body)
	})
}
