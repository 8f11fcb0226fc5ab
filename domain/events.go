package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Event types (stable names stored in the event store).
const (
	EvtOrderPlaced             = "OrderPlaced"
	EvtStockReserved           = "StockReserved"
	EvtStockRejected           = "StockRejected"
	EvtPaymentSucceeded        = "PaymentSucceeded"
	EvtPaymentAmountMismatched = "PaymentAmountMismatched"
	EvtPaymentFailed           = "PaymentFailed"
	EvtOrderCancelled          = "OrderCancelled"
	EvtOrderShipped            = "OrderShipped"
	EvtOrderDelivered          = "OrderDelivered"
	EvtOrderCompleted          = "OrderCompleted"
	EvtRefundRequested         = "RefundRequested"
	EvtRefundCompleted         = "RefundCompleted"
	EvtRefundRejected          = "RefundRejected"
	EvtOrderRefunded           = "OrderRefunded"
)

// Event is a fact about an order: its type, the schema version of its
// payload, the payload and who caused it when.
type Event struct {
	Type    string
	Version int
	Data    EventData
	Meta    EventMeta
}

// EventData is an event payload; each payload type names its event type.
type EventData interface{ EventType() string }

// EventMeta is stored with every event.
type EventMeta struct {
	CommandID     string
	CorrelationID string
	CausationID   string
	// CommandFingerprint identifies the content of the command that caused
	// the event (its order, type and canonical body), so a later command
	// under the same command ID can be told apart from a resend of this
	// one. Empty for events written before fingerprints were recorded and
	// for commands the service issues itself.
	CommandFingerprint string
	OccurredAt         time.Time
	// TraceParent is the W3C traceparent of the span that decided the
	// event, so whatever reacts to it (saga, payment timer, projections,
	// stock) continues the command's trace. Empty when none was traced.
	TraceParent string
}

// Line is one order line; UnitPrice is in minor units of the order currency.
type Line struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// OrderPlaced: a customer placed an order.
type OrderPlaced struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Lines      []Line `json:"lines"`
	Total      Money  `json:"total"`
}

// StockReserved: every line's stock is reserved; payment may start.
type StockReserved struct{}

// StockRejected: stock could not be reserved; the order is cancelled.
type StockRejected struct {
	Reason string   `json:"reason"`
	SKUs   []string `json:"skus,omitempty"`
}

// PaymentSucceeded: money was received. Late marks a payment on a cancelled
// order; Extra a payment beyond the first on a paid order. Both are refunded
// by the RefundRequested that follows them.
type PaymentSucceeded struct {
	PaymentID string `json:"payment_id"`
	Amount    Money  `json:"amount"`
	Provider  string `json:"provider,omitempty"`
	Late      bool   `json:"late,omitempty"`
	Extra     bool   `json:"extra,omitempty"`
}

// PaymentAmountMismatched: money was received that does not match the order
// total; it is recorded (never lost) and refunded, and the order still waits
// for a correct payment.
type PaymentAmountMismatched struct {
	PaymentID string `json:"payment_id"`
	Amount    Money  `json:"amount"`
	Expected  Money  `json:"expected"`
	Provider  string `json:"provider,omitempty"`
}

// PaymentFailed: a payment attempt failed; another may follow.
type PaymentFailed struct {
	PaymentID string `json:"payment_id"`
	Reason    string `json:"reason"`
	Provider  string `json:"provider,omitempty"`
}

// OrderCancelled: the order will not be fulfilled.
type OrderCancelled struct {
	Reason string `json:"reason"`
}

// OrderShipped: the parcel left. Schema v2; v1 called TrackingNumber
// "tracking" (see upcastOrderShippedV1).
type OrderShipped struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

// OrderDelivered: the carrier confirmed delivery.
type OrderDelivered struct{}

// OrderCompleted: the order is closed.
type OrderCompleted struct{}

// RefundRequested: a refund was opened. Automatic refunds come from a
// cancel after payment, a late, extra or mismatched payment.
type RefundRequested struct {
	RefundID  string `json:"refund_id"`
	Amount    Money  `json:"amount"`
	Reason    string `json:"reason"`
	Automatic bool   `json:"automatic,omitempty"`
}

// RefundCompleted: the money went back to the customer.
type RefundCompleted struct {
	RefundID string `json:"refund_id"`
	Amount   Money  `json:"amount"`
}

// RefundRejected: the refund will not be paid.
type RefundRejected struct {
	RefundID string `json:"refund_id"`
	Reason   string `json:"reason"`
}

// OrderRefunded: every unit of money received has been refunded.
type OrderRefunded struct {
	Amount Money `json:"amount"`
}

// EventType implementations.
func (OrderPlaced) EventType() string             { return EvtOrderPlaced }
func (StockReserved) EventType() string           { return EvtStockReserved }
func (StockRejected) EventType() string           { return EvtStockRejected }
func (PaymentSucceeded) EventType() string        { return EvtPaymentSucceeded }
func (PaymentAmountMismatched) EventType() string { return EvtPaymentAmountMismatched }
func (PaymentFailed) EventType() string           { return EvtPaymentFailed }
func (OrderCancelled) EventType() string          { return EvtOrderCancelled }
func (OrderShipped) EventType() string            { return EvtOrderShipped }
func (OrderDelivered) EventType() string          { return EvtOrderDelivered }
func (OrderCompleted) EventType() string          { return EvtOrderCompleted }
func (RefundRequested) EventType() string         { return EvtRefundRequested }
func (RefundCompleted) EventType() string         { return EvtRefundCompleted }
func (RefundRejected) EventType() string          { return EvtRefundRejected }
func (OrderRefunded) EventType() string           { return EvtOrderRefunded }

// Upcaster rewrites a payload of one schema version into the next.
type Upcaster func(data []byte) ([]byte, error)

// Unmarshaler reads JSON into v, a pointer to a zero value, with the
// result json.Unmarshal gives.
type Unmarshaler func(data []byte, v any) error

// eventSchema says how to read one event type: its current version, a
// decoder for that version, and upcasters from older versions (keyed by the
// version they read).
type eventSchema struct {
	version   int
	decode    func(unmarshal Unmarshaler, data []byte) (EventData, error)
	upcasters map[int]Upcaster
}

// Codec encodes and decodes events. The zero value is not usable; use
// NewCodec. Every event type is listed explicitly in NewCodec.
type Codec struct {
	schemas   map[string]eventSchema
	unmarshal Unmarshaler
}

// NewCodec returns the codec for the current event schemas. It reads JSON
// with encoding/json; WithUnmarshal gives it another reader.
func NewCodec() *Codec {
	return &Codec{unmarshal: json.Unmarshal, schemas: map[string]eventSchema{
		EvtOrderPlaced:             {version: 1, decode: payload[OrderPlaced]},
		EvtStockReserved:           {version: 1, decode: payload[StockReserved]},
		EvtStockRejected:           {version: 1, decode: payload[StockRejected]},
		EvtPaymentSucceeded:        {version: 1, decode: payload[PaymentSucceeded]},
		EvtPaymentAmountMismatched: {version: 1, decode: payload[PaymentAmountMismatched]},
		EvtPaymentFailed:           {version: 1, decode: payload[PaymentFailed]},
		EvtOrderCancelled:          {version: 1, decode: payload[OrderCancelled]},
		EvtOrderShipped: {version: 2, decode: payload[OrderShipped],
			upcasters: map[int]Upcaster{1: upcastOrderShippedV1}},
		EvtOrderDelivered:  {version: 1, decode: payload[OrderDelivered]},
		EvtOrderCompleted:  {version: 1, decode: payload[OrderCompleted]},
		EvtRefundRequested: {version: 1, decode: payload[RefundRequested]},
		EvtRefundCompleted: {version: 1, decode: payload[RefundCompleted]},
		EvtRefundRejected:  {version: 1, decode: payload[RefundRejected]},
		EvtOrderRefunded:   {version: 1, decode: payload[OrderRefunded]},

		EvtInventoryAdded:     {version: 1, decode: payload[InventoryAdded]},
		EvtInventoryReserved:  {version: 1, decode: payload[InventoryReserved]},
		EvtInventoryReleased:  {version: 1, decode: payload[InventoryReleased]},
		EvtInventoryCommitted: {version: 1, decode: payload[InventoryCommitted]},
	}}
}

// payload reads an event payload of type T.
func payload[T EventData](unmarshal Unmarshaler, data []byte) (EventData, error) {
	var v T
	if err := unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// WithUpcaster returns a copy of the codec in which eventType is at schema
// version to, decoded by decode, and payloads of version to-1 are first
// rewritten by up. It is how a schema change is introduced.
func (c *Codec) WithUpcaster(eventType string, to int, decode func([]byte) (EventData, error), up Upcaster) *Codec {
	out := c.clone()
	s := out.schemas[eventType]
	ups := make(map[int]Upcaster, len(s.upcasters)+1)
	for k, v := range s.upcasters {
		ups[k] = v
	}
	ups[to-1] = up
	out.schemas[eventType] = eventSchema{version: to, decode: func(_ Unmarshaler, b []byte) (EventData, error) { return decode(b) }, upcasters: ups}
	return out
}

// WithUnmarshal returns a copy of the codec that reads payloads and
// metadata with unmarshal instead of encoding/json; unmarshal must give
// what json.Unmarshal gives.
func (c *Codec) WithUnmarshal(unmarshal Unmarshaler) *Codec {
	out := c.clone()
	out.unmarshal = unmarshal
	return out
}

func (c *Codec) clone() *Codec {
	out := &Codec{schemas: make(map[string]eventSchema, len(c.schemas)), unmarshal: c.unmarshal}
	for k, v := range c.schemas {
		out.schemas[k] = v
	}
	return out
}

// upcastOrderShippedV1 renames v1's "tracking" to "tracking_number".
func upcastOrderShippedV1(data []byte) ([]byte, error) {
	var v1 struct {
		Carrier  string `json:"carrier"`
		Tracking string `json:"tracking"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(OrderShipped{Carrier: v1.Carrier, TrackingNumber: v1.Tracking})
}

// wireMeta is the JSON form of EventMeta plus the payload's schema version.
type wireMeta struct {
	CommandID          string    `json:"command_id"`
	CorrelationID      string    `json:"correlation_id,omitempty"`
	CausationID        string    `json:"causation_id,omitempty"`
	CommandFingerprint string    `json:"command_fingerprint,omitempty"`
	OccurredAt         time.Time `json:"occurred_at"`
	SchemaVersion      int       `json:"schema_version"`
	TraceParent        string    `json:"traceparent,omitempty"`
}

// Encode returns the event's type name, JSON payload and JSON metadata.
func (c *Codec) Encode(e Event) (eventType string, data, metadata []byte, err error) {
	s, ok := c.schemas[e.Type]
	if !ok || e.Data == nil || e.Data.EventType() != e.Type {
		return "", nil, nil, fmt.Errorf("encode event: unknown event type %q", e.Type)
	}
	if data, err = json.Marshal(e.Data); err != nil {
		return "", nil, nil, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	metadata, err = json.Marshal(wireMeta{
		CommandID: e.Meta.CommandID, CorrelationID: e.Meta.CorrelationID, CausationID: e.Meta.CausationID,
		CommandFingerprint: e.Meta.CommandFingerprint, OccurredAt: e.Meta.OccurredAt.UTC(), SchemaVersion: s.version,
		TraceParent: e.Meta.TraceParent,
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("encode %s metadata: %w", e.Type, err)
	}
	return e.Type, data, metadata, nil
}

// Decode reads an event, upcasting payloads of older schema versions. Any
// malformed input is an error, never a panic.
func (c *Codec) Decode(eventType string, data, metadata []byte) (Event, error) {
	s, ok := c.schemas[eventType]
	if !ok {
		return Event{}, fmt.Errorf("decode event: unknown event type %q", eventType)
	}
	var m wireMeta
	// Metadata almost always starts with '{'; only other input needs the
	// scan for a payload that is all white space.
	if len(metadata) > 0 && (metadata[0] == '{' || len(bytes.TrimSpace(metadata)) > 0) {
		if err := c.unmarshal(metadata, &m); err != nil {
			return Event{}, fmt.Errorf("decode %s metadata: %w", eventType, err)
		}
	}
	if m.SchemaVersion == 0 {
		m.SchemaVersion = 1 // events written before versions were recorded
	}
	if m.SchemaVersion > s.version || m.SchemaVersion < 1 {
		return Event{}, fmt.Errorf("decode %s: schema version %d is not known (current is %d); upgrade Ordo", eventType, m.SchemaVersion, s.version)
	}
	for v := m.SchemaVersion; v < s.version; v++ {
		up, ok := s.upcasters[v]
		if !ok {
			return Event{}, fmt.Errorf("decode %s: no upcaster from schema version %d", eventType, v)
		}
		var err error
		if data, err = up(data); err != nil {
			return Event{}, fmt.Errorf("decode %s: upcast from version %d: %w", eventType, v, err)
		}
	}
	d, err := s.decode(c.unmarshal, data)
	if err != nil {
		return Event{}, fmt.Errorf("decode %s payload: %w", eventType, err)
	}
	return Event{Type: eventType, Version: s.version, Data: d, Meta: EventMeta{
		CommandID: m.CommandID, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		CommandFingerprint: m.CommandFingerprint, OccurredAt: m.OccurredAt, TraceParent: m.TraceParent,
	}}, nil
}

// EventTypes lists the event types the codec knows.
func (c *Codec) EventTypes() []string {
	out := make([]string, 0, len(c.schemas))
	for k := range c.schemas {
		out = append(out, k)
	}
	return out
}

// defaultCodec backs EncodeEvent and DecodeEvent; it is immutable.
var defaultCodec = NewCodec()

// EncodeEvent encodes with the current schemas; see Codec.Encode.
func EncodeEvent(e Event) (eventType string, data, metadata []byte, err error) {
	return defaultCodec.Encode(e)
}

// DecodeEvent decodes with the current schemas; see Codec.Decode.
func DecodeEvent(eventType string, data, metadata []byte) (Event, error) {
	return defaultCodec.Decode(eventType, data, metadata)
}
