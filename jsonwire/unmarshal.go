// Package jsonwire reads JSON into Go structs the way encoding/json does,
// but without reflecting on every value, for the JSON Ordo reads most: event
// payloads and metadata, and the stock API's messages.
//
// It reads only what it fully understands: one object of the struct's own
// keys (matched exactly, each at most once) with strings without escapes,
// integers that fit, true, false, null, nested objects and arrays of the
// same, and canonical RFC 3339 times. Anything else (an unknown key, a key
// in another case, a duplicate, an escape, invalid UTF-8, a number with a
// fraction or an exponent, a field type it does not read, trailing data,
// malformed input) makes it give up, and encoding/json decides. Tests and
// fuzz targets hold the two equal.
//
// Package domain does not import it: the event codec is handed Unmarshal
// (see NewCodec), so the domain knows nothing of how JSON is read.
package jsonwire

import (
	"encoding/json"
	"reflect"
)

// Unmarshal is json.Unmarshal(data, v) for v a pointer to a zero value.
func Unmarshal(data []byte, v any) error {
	if TryUnmarshal(data, v) {
		return nil
	}
	return json.Unmarshal(data, v)
}

// TryUnmarshal reads data into *v, which must be a zero value, when data
// is in the subset of JSON described above, with the result encoding/json
// gives; it reports whether it did. When it did not, *v is zero again and
// the caller decides with encoding/json (for example with a json.Decoder
// that disallows unknown fields).
func TryUnmarshal(data []byte, v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	p := planOf(rv.Type().Elem())
	if p.kind == unsupported {
		return false
	}
	d := reader{b: data}
	if d.value(p, rv.UnsafePointer()) && d.end() {
		return true
	}
	rv.Elem().SetZero()
	return false
}
