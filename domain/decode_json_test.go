package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fastCase is one event type's fast decoder alone, and a new value of its
// payload type for encoding/json to decode into.
type fastCase struct {
	fast func([]byte) (EventData, bool)
	zero func() any
}

func fastOnly[T EventData](fast func(*payloadLexer, *T) bool) fastCase {
	return fastCase{
		fast: func(b []byte) (EventData, bool) {
			var v T
			l := payloadLexer{b: b}
			ok := fast(&l, &v) && l.end()
			return v, ok
		},
		zero: func() any { return new(T) },
	}
}

// fastCases lists every event type's fast decoder; TestFastDecodersMatchJSON
// checks it covers the codec.
var fastCases = map[string]fastCase{
	EvtOrderPlaced:             fastOnly(decodeOrderPlaced),
	EvtStockReserved:           fastOnly(emptyObject[StockReserved]),
	EvtStockRejected:           fastOnly(decodeStockRejected),
	EvtPaymentSucceeded:        fastOnly(decodePaymentSucceeded),
	EvtPaymentAmountMismatched: fastOnly(decodePaymentAmountMismatched),
	EvtPaymentFailed:           fastOnly(decodePaymentFailed),
	EvtOrderCancelled:          fastOnly(decodeOrderCancelled),
	EvtOrderShipped:            fastOnly(decodeOrderShipped),
	EvtOrderDelivered:          fastOnly(emptyObject[OrderDelivered]),
	EvtOrderCompleted:          fastOnly(emptyObject[OrderCompleted]),
	EvtRefundRequested:         fastOnly(decodeRefundRequested),
	EvtRefundCompleted:         fastOnly(decodeRefundCompleted),
	EvtRefundRejected:          fastOnly(decodeRefundRejected),
	EvtOrderRefunded:           fastOnly(decodeOrderRefunded),
	EvtInventoryAdded:          fastOnly(decodeInventoryAdded),
	EvtInventoryReserved:       fastOnly(decodeInventoryReserved),
	EvtInventoryReleased:       fastOnly(decodeInventoryReleased),
	EvtInventoryCommitted:      fastOnly(decodeInventoryCommitted),
}

// checkFastMatchesJSON fails when the fast path accepts in and its result
// is not exactly what encoding/json makes of it. It reports whether the
// fast path accepted.
func checkFastMatchesJSON(t *testing.T, typ string, in []byte) bool {
	t.Helper()
	c := fastCases[typ]
	got, ok := c.fast(in)
	if !ok {
		return false
	}
	want := c.zero()
	if err := json.Unmarshal(in, want); err != nil {
		t.Fatalf("%s %q: the fast path accepted what encoding/json refuses: %v", typ, in, err)
	}
	if w := reflect.ValueOf(want).Elem().Interface(); !reflect.DeepEqual(got, w) {
		t.Fatalf("%s %q: fast path %#v, encoding/json %#v", typ, in, got, w)
	}
	return true
}

// filled is a payload of type typ with every field set (strings with
// characters JSON must not escape, negative and large numbers, true,
// two-element slices), so a field added to a payload type without its fast
// decoder learning it shows up here.
func filled(typ string, seed int) EventData {
	v := reflect.ValueOf(fastCases[typ].zero()).Elem()
	fill(v, seed)
	return v.Interface().(EventData)
}

func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d é/ü:{}[],%d", seed, seed*7))
	case reflect.Int64, reflect.Int:
		v.SetInt(int64(seed*1_000_003) - 5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed+i+1)
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), seed+i)
		}
	default:
		panic(fmt.Sprintf("fill: no rule for %s", v.Type()))
	}
}

// TestFastDecodersMatchJSON: the fast payload decoders take everything
// Encode writes, and wherever they accept a payload they give exactly what
// encoding/json gives; what they do not understand they leave to it.
func TestFastDecodersMatchJSON(t *testing.T) {
	for _, typ := range NewCodec().EventTypes() {
		if _, ok := fastCases[typ]; !ok {
			t.Fatalf("event type %s has no fast decoder case", typ)
		}
	}
	for typ := range fastCases {
		zero := reflect.ValueOf(fastCases[typ].zero()).Elem().Interface().(EventData)
		for i, d := range []EventData{zero, filled(typ, 1), filled(typ, 100)} {
			_, data, _, err := EncodeEvent(Event{Type: typ, Data: d})
			if err != nil {
				t.Fatal(err)
			}
			if !checkFastMatchesJSON(t, typ, data) {
				t.Errorf("%s: Encode's payload %d %s does not take the fast path", typ, i, data)
			}
			for _, in := range variants(string(data)) {
				checkFastMatchesJSON(t, typ, []byte(in))
			}
		}
	}
	// Inputs the fast path must accept beyond Encode's layout, and some it
	// must leave to encoding/json (checked above for equality either way).
	for _, c := range []struct {
		typ, in string
		fast    bool
	}{
		{EvtOrderPlaced, ` { "total" : { "currency":"EUR" , "amount": -0 } , "lines" : [ ] }` + "\n", true},
		{EvtOrderPlaced, `{"lines":[{"sku":"a","quantity":1,"unit_price":2},{"unit_price":3}]}`, true},
		{EvtStockRejected, `{"skus":[],"reason":""}`, true},
		{EvtOrderCancelled, `{"reason":"x"}`, true},
		{EvtOrderCancelled, `{"Reason":"x"}`, false},              // encoding/json matches keys in any case
		{EvtOrderCancelled, `{"reason":"x","reason":"y"}`, false}, // a repeated key
		{EvtOrderCancelled, `{"reason":null}`, true},
		{EvtStockRejected, `{"skus":null,"reason":"x"}`, true},
		{EvtStockRejected, `{"skus":[null,"a"]}`, true},
		{EvtOrderPlaced, `{"lines":[null]}`, false},
		{EvtOrderPlaced, `{"lines":nul}`, false},
		{EvtOrderCancelled, `{"reason":"a\"b"}`, false},
		{EvtOrderCancelled, `{"reason":"a\u0041"}`, false},
		{EvtOrderCancelled, "{\"reason\":\"\xff\"}", false},
		{EvtOrderCancelled, "{\"reason\":\"a\tb\"}", false},
		{EvtOrderCancelled, `{"reason":"x"} {}`, false},
		{EvtOrderCancelled, `{"reason":"x",}`, false},
		{EvtOrderCancelled, `{"reason":"x","other":1}`, false},
		{EvtOrderCancelled, `null`, false},
		{EvtOrderCancelled, ``, false},
		{EvtOrderRefunded, `{"amount":{"amount":1.0,"currency":"EUR"}}`, false},
		{EvtOrderRefunded, `{"amount":{"amount":1e3,"currency":"EUR"}}`, false},
		{EvtOrderRefunded, `{"amount":{"amount":01,"currency":"EUR"}}`, false},
		{EvtOrderRefunded, `{"amount":{"amount":1234567890123456789,"currency":"EUR"}}`, false},
		{EvtOrderRefunded, `{"amount":{"amount":123456789012345678,"currency":"EUR"}}`, true},
		{EvtOrderRefunded, `{"amount":{"amount":-,"currency":"EUR"}}`, false},
		{EvtOrderRefunded, `{"amount":{"amount":"1","currency":"EUR"}}`, false},
		{EvtOrderRefunded, `{"amount":{"amount":1,"amount":2}}`, false},
		{EvtPaymentSucceeded, `{"late":true,"extra":false}`, true},
		{EvtPaymentSucceeded, `{"late":tru}`, false},
		{EvtPaymentSucceeded, `{"late":1}`, false},
		{EvtInventoryReserved, `{"sku":"a","order_id":"b","quantity":3}`, true},
		{EvtOrderDelivered, `{}`, true},
		{EvtOrderDelivered, `{"x":1}`, false},
	} {
		if got := checkFastMatchesJSON(t, c.typ, []byte(c.in)); got != c.fast {
			t.Errorf("%s %q: fast path taken %v, want %v", c.typ, c.in, got, c.fast)
		}
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

// FuzzFastDecoders: for every event type, the fast path never accepts a
// payload encoding/json reads differently or refuses.
func FuzzFastDecoders(f *testing.F) {
	types := NewCodec().EventTypes()
	slices.Sort(types) // the corpus names a type by its index
	for i, typ := range types {
		_, data, _, _ := EncodeEvent(Event{Type: typ, Data: filled(typ, i)})
		f.Add(uint8(i), data)
	}
	f.Add(uint8(0), []byte(`{"lines":[{"sku":"a","quantity":1}],"total":{"amount":1,"currency":"EUR"}}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		checkFastMatchesJSON(t, types[int(which)%len(types)], data)
	})
}
