package domain

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestEventRoundTrip(t *testing.T) {
	meta := EventMeta{CommandID: "c", CorrelationID: "corr", CausationID: "cause", OccurredAt: t0}
	all := []EventData{
		placed().Data, StockReserved{}, StockRejected{Reason: "out_of_stock", SKUs: []string{"a"}},
		PaymentSucceeded{PaymentID: "p", Amount: eur(1), Provider: "x", Late: true},
		PaymentAmountMismatched{PaymentID: "p", Amount: eur(1), Expected: eur(2)},
		PaymentFailed{PaymentID: "p", Reason: "r"}, OrderCancelled{Reason: "r"},
		OrderShipped{Carrier: "c", TrackingNumber: "t"}, OrderDelivered{}, OrderCompleted{},
		RefundRequested{RefundID: "r", Amount: eur(1), Reason: "x", Automatic: true},
		RefundCompleted{RefundID: "r", Amount: eur(1)}, RefundRejected{RefundID: "r", Reason: "x"},
		OrderRefunded{Amount: eur(1)},
		InventoryAdded{SKU: "s", Quantity: 5}, InventoryReserved{SKU: "s", OrderID: testOrder, Quantity: 2},
		InventoryReleased{SKU: "s", OrderID: testOrder, Quantity: 2}, InventoryCommitted{SKU: "s", OrderID: testOrder, Quantity: 2},
	}
	if len(all) != len(NewCodec().EventTypes()) {
		t.Fatalf("test covers %d event types, codec knows %d", len(all), len(NewCodec().EventTypes()))
	}
	for _, d := range all {
		e := Event{Type: d.EventType(), Data: d, Meta: meta}
		typ, data, md, err := EncodeEvent(e)
		if err != nil {
			t.Fatalf("encode %s: %v", d.EventType(), err)
		}
		got, err := DecodeEvent(typ, data, md)
		if err != nil {
			t.Fatalf("decode %s: %v", typ, err)
		}
		if !reflect.DeepEqual(got.Data, d) || got.Meta != meta {
			t.Fatalf("%s: got %+v / %+v, want %+v / %+v", typ, got.Data, got.Meta, d, meta)
		}
	}
}

// TestUpcastV1OrderShipped stores an OrderShipped payload in its v1 shape
// ("tracking"), decodes it with the current v2 codec and folds it.
func TestUpcastV1OrderShipped(t *testing.T) {
	v1 := []byte(`{"carrier":"dhl","tracking":"JD014600006"}`)
	meta := []byte(`{"command_id":"c-ship","occurred_at":"2026-11-01T12:00:00Z","schema_version":1}`)
	e, err := DecodeEvent(EvtOrderShipped, v1, meta)
	if err != nil {
		t.Fatalf("decode v1: %v", err)
	}
	if e.Version != 2 {
		t.Fatalf("decoded version %d, want the current 2", e.Version)
	}
	o := fold(t, append(paid(), e))
	v := o.View()
	if o.State() != StateShipped || v.Shipment == nil || v.Shipment.TrackingNumber != "JD014600006" {
		t.Fatalf("after folding the v1 event: state %s, shipment %+v", o.State(), v.Shipment)
	}
}

// TestWithUpcaster introduces a new schema version through the hook: a v2
// RefundRejected that carries a structured reason. Stored v1 events still
// decode and fold.
func TestWithUpcaster(t *testing.T) {
	type rejectedV2 struct {
		RefundID string `json:"refund_id"`
		Reason   struct {
			Code string `json:"code"`
			Text string `json:"text"`
		} `json:"reason"`
	}
	decodeV2 := func(b []byte) (EventData, error) {
		var v rejectedV2
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		return RefundRejected{RefundID: v.RefundID, Reason: v.Reason.Code + ": " + v.Reason.Text}, nil
	}
	upV1 := func(b []byte) ([]byte, error) {
		var v1 RefundRejected
		if err := json.Unmarshal(b, &v1); err != nil {
			return nil, err
		}
		var v2 rejectedV2
		v2.RefundID, v2.Reason.Code, v2.Reason.Text = v1.RefundID, "legacy", v1.Reason
		return json.Marshal(v2)
	}
	codec := NewCodec().WithUpcaster(EvtRefundRejected, 2, decodeV2, upV1)
	e, err := codec.Decode(EvtRefundRejected, []byte(`{"refund_id":"r-1","reason":"too late"}`), []byte(`{"schema_version":1}`))
	if err != nil {
		t.Fatalf("decode stored v1: %v", err)
	}
	if got := e.Data.(RefundRejected).Reason; got != "legacy: too late" {
		t.Fatalf("upcast reason = %q", got)
	}
	o := fold(t, append(paid(), ev(RefundRequested{RefundID: "r-1", Amount: eur(10), Reason: "x"}), e))
	if v := o.View(); v.Refunds[0].Status != RefundStatusRejected {
		t.Fatalf("refund status %s after folding the upcast event", v.Refunds[0].Status)
	}
	if _, err := NewCodec().Decode(EvtRefundRejected, []byte(`{}`), []byte(`{"schema_version":2}`)); err == nil {
		t.Fatal("a version newer than the codec knows must be refused")
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, tc := range []struct{ typ, data, meta string }{
		{"Nope", `{}`, `{}`},
		{EvtOrderPlaced, `{"lines":7}`, `{}`},
		{EvtOrderPlaced, `{}`, `{"schema_version":"x"}`},
		{EvtOrderPlaced, `not json`, ``},
		{EvtOrderShipped, `[]`, `{"schema_version":1}`},
	} {
		if _, err := DecodeEvent(tc.typ, []byte(tc.data), []byte(tc.meta)); err == nil {
			t.Errorf("DecodeEvent(%s, %s, %s) succeeded, want an error", tc.typ, tc.data, tc.meta)
		}
	}
}

// TestTraceParentInMetadata: an event's traceparent is kept in its
// metadata and read back; an event without one writes no field, so
// untraced events are stored as before.
func TestTraceParentInMetadata(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, want := range []string{tp, ""} {
		e := Event{Type: EvtOrderCompleted, Data: OrderCompleted{}, Meta: EventMeta{CommandID: "c", TraceParent: want}}
		typ, data, meta, err := EncodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(string(meta), "traceparent"); has != (want != "") {
			t.Errorf("metadata %s: traceparent field present %t, want %t", meta, has, want != "")
		}
		got, err := DecodeEvent(typ, data, meta)
		if err != nil {
			t.Fatal(err)
		}
		if got.Meta.TraceParent != want {
			t.Errorf("traceparent read back: got %q, want %q", got.Meta.TraceParent, want)
		}
	}
}
