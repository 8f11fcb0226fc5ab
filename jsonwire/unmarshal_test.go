package jsonwire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// payloadTypes lists every event type's payload; TestEventPayloadsMatchJSON
// checks it covers the codec.
var payloadTypes = map[string]reflect.Type{
	domain.EvtOrderPlaced:             reflect.TypeFor[domain.OrderPlaced](),
	domain.EvtStockReserved:           reflect.TypeFor[domain.StockReserved](),
	domain.EvtStockRejected:           reflect.TypeFor[domain.StockRejected](),
	domain.EvtPaymentSucceeded:        reflect.TypeFor[domain.PaymentSucceeded](),
	domain.EvtPaymentAmountMismatched: reflect.TypeFor[domain.PaymentAmountMismatched](),
	domain.EvtPaymentFailed:           reflect.TypeFor[domain.PaymentFailed](),
	domain.EvtOrderCancelled:          reflect.TypeFor[domain.OrderCancelled](),
	domain.EvtOrderShipped:            reflect.TypeFor[domain.OrderShipped](),
	domain.EvtOrderDelivered:          reflect.TypeFor[domain.OrderDelivered](),
	domain.EvtOrderCompleted:          reflect.TypeFor[domain.OrderCompleted](),
	domain.EvtRefundRequested:         reflect.TypeFor[domain.RefundRequested](),
	domain.EvtRefundCompleted:         reflect.TypeFor[domain.RefundCompleted](),
	domain.EvtRefundRejected:          reflect.TypeFor[domain.RefundRejected](),
	domain.EvtOrderRefunded:           reflect.TypeFor[domain.OrderRefunded](),
	domain.EvtInventoryAdded:          reflect.TypeFor[domain.InventoryAdded](),
	domain.EvtInventoryReserved:       reflect.TypeFor[domain.InventoryReserved](),
	domain.EvtInventoryReleased:       reflect.TypeFor[domain.InventoryReleased](),
	domain.EvtInventoryCommitted:      reflect.TypeFor[domain.InventoryCommitted](),
}

// checkMatchesJSON fails when TryUnmarshal accepts in as a value of type
// typ and its result is not exactly what encoding/json makes of it, or when
// it refuses and does not leave the value zero; and when Unmarshal does not
// give encoding/json's result and error. It reports whether the fast path
// accepted.
func checkMatchesJSON(t testing.TB, typ reflect.Type, in []byte) bool {
	t.Helper()
	got := reflect.New(typ)
	ok := TryUnmarshal(in, got.Interface())
	want := reflect.New(typ)
	err := json.Unmarshal(in, want.Interface())
	switch {
	case ok && err != nil:
		t.Fatalf("%s %q: the fast path accepted what encoding/json refuses: %v", typ, in, err)
	case ok && !reflect.DeepEqual(got.Elem().Interface(), want.Elem().Interface()):
		t.Fatalf("%s %q: fast path %#v, encoding/json %#v", typ, in, got.Elem().Interface(), want.Elem().Interface())
	case !ok && !got.Elem().IsZero():
		t.Fatalf("%s %q: the fast path refused but left %#v", typ, in, got.Elem().Interface())
	}
	again := reflect.New(typ)
	err2 := Unmarshal(in, again.Interface())
	if fmt.Sprint(err2) != fmt.Sprint(err) || err == nil && !reflect.DeepEqual(again.Elem().Interface(), want.Elem().Interface()) {
		t.Fatalf("%s %q: Unmarshal gave %#v, %v; encoding/json %#v, %v", typ, in, again.Elem().Interface(), err2, want.Elem().Interface(), err)
	}
	return ok
}

// filled is a value of type t with every field set (strings with
// characters JSON must not escape, negative and large numbers, true,
// two-element slices), so a field type this reader does not handle shows up.
func filled(t reflect.Type, seed int) reflect.Value {
	v := reflect.New(t).Elem()
	fill(v, seed)
	return v
}

func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d é/ü:{}[],%d", seed, seed*7))
	case reflect.Int64, reflect.Int:
		v.SetInt(int64(seed*1_000_003) - 5)
	case reflect.Uint64:
		v.SetUint(uint64(seed) * 1_000_003)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed+i+1)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 24, 9, 30, seed%60, seed*1000, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), seed+i)
		}
	default:
		panic(fmt.Sprintf("fill: no rule for %s", v.Type()))
	}
}

// TestEventPayloadsMatchJSON: the fast path takes every payload Encode
// writes, and wherever it accepts a payload it gives exactly what
// encoding/json gives; what it does not understand it leaves to it.
func TestEventPayloadsMatchJSON(t *testing.T) {
	for _, typ := range domain.NewCodec().EventTypes() {
		if _, ok := payloadTypes[typ]; !ok {
			t.Fatalf("event type %s is missing from payloadTypes", typ)
		}
	}
	for typ, rt := range payloadTypes {
		for i, d := range []reflect.Value{reflect.New(rt).Elem(), filled(rt, 1), filled(rt, 100)} {
			_, data, _, err := domain.EncodeEvent(domain.Event{Type: typ, Data: d.Interface().(domain.EventData)})
			if err != nil {
				t.Fatal(err)
			}
			if !checkMatchesJSON(t, rt, data) {
				t.Errorf("%s: Encode's payload %d %s does not take the fast path", typ, i, data)
			}
			for _, in := range variants(string(data)) {
				checkMatchesJSON(t, rt, []byte(in))
			}
		}
	}
}

// TestEdgeCases: inputs the fast path must accept beyond Encode's layout,
// and some it must leave to encoding/json (checked for equality either way).
func TestEdgeCases(t *testing.T) {
	for _, c := range []struct {
		typ, in string
		fast    bool
	}{
		{domain.EvtOrderPlaced, ` { "total" : { "currency":"EUR" , "amount": -0 } , "lines" : [ ] }` + "\n", true},
		{domain.EvtOrderPlaced, `{"lines":[{"sku":"a","quantity":1,"unit_price":2},{"unit_price":3}]}`, true},
		{domain.EvtOrderPlaced, `{"lines":[null]}`, true},
		{domain.EvtOrderPlaced, `{"lines":nul}`, false},
		{domain.EvtOrderPlaced, `{"lines":{}}`, false},
		{domain.EvtStockRejected, `{"skus":[],"reason":""}`, true},
		{domain.EvtStockRejected, `{"skus":null,"reason":"x"}`, true},
		{domain.EvtStockRejected, `{"skus":[null,"a"]}`, true},
		{domain.EvtStockRejected, `{"skus":["a","b","c","d","e","f","g","h","i"]}`, true},
		{domain.EvtOrderCancelled, `{"reason":"x"}`, true},
		{domain.EvtOrderCancelled, `{"reason":null}`, true},
		{domain.EvtOrderCancelled, `{"Reason":"x"}`, false},              // encoding/json matches keys in any case
		{domain.EvtOrderCancelled, `{"reason":"x","reason":"y"}`, false}, // a repeated key
		{domain.EvtOrderCancelled, `{"reason":"a\"b"}`, false},
		{domain.EvtOrderCancelled, `{"reason":"a\u0041"}`, false},
		{domain.EvtOrderCancelled, "{\"reason\":\"\xff\"}", false},
		{domain.EvtOrderCancelled, "{\"reason\":\"a\tb\"}", false},
		{domain.EvtOrderCancelled, `{"reason":"x"} {}`, false},
		{domain.EvtOrderCancelled, `{"reason":"x",}`, false},
		{domain.EvtOrderCancelled, `{"reason":"x","other":1}`, false},
		{domain.EvtOrderCancelled, `{"reason":1}`, false},
		{domain.EvtOrderCancelled, `null`, true},
		{domain.EvtOrderCancelled, ``, false},
		{domain.EvtOrderCancelled, `[]`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":1.0,"currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":1e3,"currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":01,"currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":9223372036854775807,"currency":"EUR"}}`, true},
		{domain.EvtOrderRefunded, `{"amount":{"amount":9223372036854775808,"currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":-9223372036854775808,"currency":"EUR"}}`, true},
		{domain.EvtOrderRefunded, `{"amount":{"amount":-9223372036854775809,"currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":99999999999999999999,"currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":-,"currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":"1","currency":"EUR"}}`, false},
		{domain.EvtOrderRefunded, `{"amount":{"amount":1,"amount":2}}`, false},
		{domain.EvtPaymentSucceeded, `{"late":true,"extra":false}`, true},
		{domain.EvtPaymentSucceeded, `{"late":tru}`, false},
		{domain.EvtPaymentSucceeded, `{"late":1}`, false},
		{domain.EvtInventoryReserved, `{"sku":"a","order_id":"b","quantity":3}`, true},
		{domain.EvtOrderDelivered, `{}`, true},
		{domain.EvtOrderDelivered, `{"x":1}`, false},
	} {
		if got := checkMatchesJSON(t, payloadTypes[c.typ], []byte(c.in)); got != c.fast {
			t.Errorf("%s %q: fast path taken %v, want %v", c.typ, c.in, got, c.fast)
		}
	}
}

// The types below exercise what the plans leave to encoding/json, or
// read as it does: promoted fields, smaller integers, unsigned integers,
// times, a tag with ",string", a type that reads itself, pointers, maps.
type (
	inner struct {
		A string `json:"a"`
		B int64  `json:"b"`
	}
	promoted struct {
		inner
		C string `json:"c"`
	}
	exported struct {
		Inner
		C   string    `json:"c"`
		U   uint64    `json:"u"`
		S   int8      `json:"s"`
		At  time.Time `json:"at"`
		Tag int64     `json:"tag,string"`
		P   *Inner    `json:"p,omitempty"`
		M   map[string]int
		Raw []byte
		Ign string `json:"-"`
		own selfReader
	}
	Inner struct {
		A string `json:"a"`
		B int64  `json:"b"`
	}
	clash struct {
		Inner
		A string `json:"a"`
	}
	selfReader struct{ X string }
	withSelf   struct {
		R selfReader `json:"r"`
	}
	recursive struct {
		Name string      `json:"name"`
		Kids []recursive `json:"kids"`
	}
)

func (s *selfReader) UnmarshalJSON(b []byte) error { s.X = "read " + string(b); return nil }

// TestPlans: values of every kind the reader takes, and the kinds it
// leaves to encoding/json, decode exactly as encoding/json decodes them.
func TestPlans(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		in   string
		fast bool
	}{
		{reflect.TypeFor[exported](), `{"a":"x","b":2,"c":"y","u":18446744073709551615,"s":-128,"at":"2026-11-24T09:30:00.5Z"}`, true},
		{reflect.TypeFor[exported](), `{"u":18446744073709551616}`, false},
		{reflect.TypeFor[exported](), `{"s":128}`, false},
		{reflect.TypeFor[exported](), `{"u":-1}`, false},
		{reflect.TypeFor[exported](), `{"u":-0}`, false},
		{reflect.TypeFor[exported](), `{"at":"2026-11-24T09:30:00+02:00"}`, true},
		{reflect.TypeFor[exported](), `{"at":"2026-11-24T9:30:00Z"}`, false},
		{reflect.TypeFor[exported](), `{"at":null}`, true},
		{reflect.TypeFor[exported](), `{"tag":"5"}`, false},
		{reflect.TypeFor[exported](), `{"p":{"a":"x"}}`, false},
		{reflect.TypeFor[exported](), `{"p":null}`, false},
		{reflect.TypeFor[exported](), `{"M":{"a":1}}`, false},
		{reflect.TypeFor[exported](), `{"Raw":"AQI="}`, false},
		{reflect.TypeFor[exported](), `{"Ign":"x"}`, false},
		{reflect.TypeFor[promoted](), `{"a":"x","c":"y"}`, false}, // unexported embedded struct
		{reflect.TypeFor[clash](), `{"a":"x"}`, false},
		{reflect.TypeFor[withSelf](), `{"r":"x"}`, false},
		{reflect.TypeFor[withSelf](), `{}`, true},
		{reflect.TypeFor[recursive](), `{"name":"x"}`, true},
		{reflect.TypeFor[recursive](), `{"name":"x","kids":[]}`, false}, // a type inside itself is left to encoding/json
		{reflect.TypeFor[[]string](), `["a","b"]`, true},
		{reflect.TypeFor[string](), `"a"`, true},
		{reflect.TypeFor[selfReader](), `"a"`, false},
	} {
		if got := checkMatchesJSON(t, c.typ, []byte(c.in)); got != c.fast {
			t.Errorf("%s %q: fast path taken %v, want %v", c.typ, c.in, got, c.fast)
		}
	}
	if TryUnmarshal([]byte(`"a"`), "not a pointer") || TryUnmarshal([]byte(`"a"`), (*string)(nil)) {
		t.Error("TryUnmarshal accepted a value it cannot write to")
	}
}

// variants are small changes to a valid payload: spaces, a truncation, a
// key in upper case, a duplicated first member, an extra member.
func variants(in string) []string {
	out := []string{" " + in + " ", strings.ReplaceAll(in, ",", " ,\n"), strings.ReplaceAll(in, ":", ": ")}
	if len(in) > 2 {
		out = append(out, in[:len(in)/2], in[:len(in)-1], strings.ToUpper(in[:3])+in[3:], in[:len(in)-1]+`,"x":1}`)
		if i := strings.IndexAny(in[1:], ",}"); i > 0 && in[1] == '"' {
			out = append(out, "{"+in[1:i+1]+","+in[1:])
		}
	}
	return out
}

// sortedTypes names the event types by index, for the fuzz corpus.
func sortedTypes() []string {
	types := domain.NewCodec().EventTypes()
	slices.Sort(types)
	return types
}

// FuzzEventPayloads: for every event type, the fast path never accepts a
// payload encoding/json reads differently or refuses.
func FuzzEventPayloads(f *testing.F) {
	types := sortedTypes()
	for i, typ := range types {
		_, data, _, _ := domain.EncodeEvent(domain.Event{Type: typ, Data: filled(payloadTypes[typ], i).Interface().(domain.EventData)})
		f.Add(uint8(i), data)
	}
	f.Add(uint8(0), []byte(`{"lines":[{"sku":"a","quantity":1}],"total":{"amount":1,"currency":"EUR"}}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		checkMatchesJSON(t, payloadTypes[types[int(which)%len(types)]], data)
	})
}
