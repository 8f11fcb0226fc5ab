package jsonwire

import (
	"math"
	"reflect"
	"time"
	"unicode/utf8"
	"unsafe"
)

// reader reads the subset of JSON this package accepts from b; every
// method reports false when the input is outside it.
type reader struct {
	b []byte
	i int
}

// value reads one value into the zero value at v as p says. Values are
// written through pointers at the offsets planOf took from reflect, so no
// reflect.Value is made per field.
func (r *reader) value(p *plan, v unsafe.Pointer) bool {
	r.ws()
	if r.lit("null") {
		// encoding/json leaves a zero value as it is for null (a slice
		// becomes nil: it is nil already).
		return p.kind != unsupported
	}
	switch p.kind {
	case stringKind:
		// A string of its own, as encoding/json makes it: a decoded value
		// never keeps the whole input alive.
		s, ok := r.str()
		*(*string)(v) = string(s)
		return ok
	case intKind:
		n, ok := r.int()
		return ok && setInt(v, p.size, n)
	case uintKind:
		n, ok := r.uint()
		return ok && setUint(v, p.size, n)
	case boolKind:
		switch {
		case r.lit("true"):
			*(*bool)(v) = true
		case r.lit("false"):
		default:
			return false
		}
		return true
	case timeKind:
		s, ok := r.str()
		if !ok {
			return false
		}
		t, ok := parseTime(s)
		*(*time.Time)(v) = t
		return ok
	case structKind:
		return r.object(p, v)
	case sliceKind:
		return r.array(p, v)
	}
	return false
}

// setInt stores n in the signed integer of size bytes at v, false when it
// does not fit.
func setInt(v unsafe.Pointer, size uintptr, n int64) bool {
	switch size {
	case 8:
		*(*int64)(v) = n
	case 4:
		*(*int32)(v) = int32(n)
		return int64(int32(n)) == n
	case 2:
		*(*int16)(v) = int16(n)
		return int64(int16(n)) == n
	case 1:
		*(*int8)(v) = int8(n)
		return int64(int8(n)) == n
	default:
		return false
	}
	return true
}

// setUint stores n in the unsigned integer of size bytes at v, false when
// it does not fit.
func setUint(v unsafe.Pointer, size uintptr, n uint64) bool {
	switch size {
	case 8:
		*(*uint64)(v) = n
	case 4:
		*(*uint32)(v) = uint32(n)
		return uint64(uint32(n)) == n
	case 2:
		*(*uint16)(v) = uint16(n)
		return uint64(uint16(n)) == n
	case 1:
		*(*uint8)(v) = uint8(n)
		return uint64(uint8(n)) == n
	default:
		return false
	}
	return true
}

// object reads an object of p's keys into the struct at v, each key at
// most once: encoding/json merges a repeated key into the value so far,
// which this reader does not copy.
func (r *reader) object(p *plan, v unsafe.Pointer) bool {
	if !r.lit("{") {
		return false
	}
	r.ws()
	if r.lit("}") {
		return true
	}
	var seen uint64
	next := 0 // writers list keys in field order: try the next field first
	for {
		r.ws()
		k, ok := r.str()
		if !ok {
			return false
		}
		n := p.field(k, next)
		if n < 0 || seen&(1<<n) != 0 {
			return false
		}
		seen |= 1 << n
		next = n + 1
		r.ws()
		if !r.lit(":") {
			return false
		}
		f := &p.fields[n]
		if !r.value(f.plan, unsafe.Add(v, f.offset)) {
			return false
		}
		r.ws()
		if r.lit(",") {
			continue
		}
		return r.lit("}")
	}
}

// field is the index of the field named k exactly, or -1; it looks at
// index guess first.
func (p *plan) field(k []byte, guess int) int {
	if guess < len(p.fields) && p.fields[guess].name == string(k) {
		return guess
	}
	for i := range p.fields {
		if p.fields[i].name == string(k) {
			return i
		}
	}
	return -1
}

// array reads an array into the slice at v; an empty one is an empty,
// non-nil slice, as encoding/json makes it. Elements are written straight
// into the backing array, up to its capacity, before the length is set:
// reflect only allocates and grows.
func (r *reader) array(p *plan, v unsafe.Pointer) bool {
	if !r.lit("[") {
		return false
	}
	s := reflect.NewAt(p.typ, v).Elem()
	s.Set(reflect.MakeSlice(p.typ, 0, 4)) // room for the few lines or events most arrays hold
	r.ws()
	if r.lit("]") {
		return true
	}
	size := p.typ.Elem().Size()
	data, n, capacity := s.UnsafePointer(), 0, s.Cap()
	for {
		if n == capacity {
			s.SetLen(n)
			s.Grow(1)
			data, capacity = s.UnsafePointer(), s.Cap()
		}
		if !r.value(p.elem, unsafe.Add(data, uintptr(n)*size)) {
			return false // TryUnmarshal zeroes the whole value
		}
		n++
		r.ws()
		if r.lit(",") {
			continue
		}
		s.SetLen(n)
		return r.lit("]")
	}
}

// ws skips JSON whitespace.
func (r *reader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// end is true when only whitespace is left.
func (r *reader) end() bool {
	r.ws()
	return r.i == len(r.b)
}

// lit consumes s if it comes next.
func (r *reader) lit(s string) bool {
	if len(r.b)-r.i < len(s) || string(r.b[r.i:r.i+len(s)]) != s {
		return false
	}
	r.i += len(s)
	return true
}

// str reads a string without escapes or control characters, in valid
// UTF-8 (encoding/json would replace invalid bytes with U+FFFD), as bytes
// of the input.
func (r *reader) str() ([]byte, bool) {
	if !r.lit(`"`) {
		return nil, false
	}
	start, ascii := r.i, true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// int reads an integer without fraction or exponent that fits an int64.
func (r *reader) int() (int64, bool) {
	neg := r.lit("-")
	u, ok := r.digits()
	switch {
	case !ok:
		return 0, false
	case neg:
		return -int64(u), u <= 1<<63 // -int64(1<<63) wraps to MinInt64, as wanted
	default:
		return int64(u), u <= math.MaxInt64
	}
}

// uint reads an unsigned integer without fraction or exponent that fits a
// uint64.
func (r *reader) uint() (uint64, bool) { return r.digits() }

// digits reads the digits of a JSON integer that fits a uint64: no
// leading zero, and no fraction or exponent after it.
func (r *reader) digits() (uint64, bool) {
	start := r.i
	var v uint64
	for ; r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9'; r.i++ {
		d := uint64(r.b[r.i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	n := r.i - start
	if n == 0 || n > 1 && r.b[start] == '0' {
		return 0, false
	}
	if r.i < len(r.b) {
		switch r.b[r.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return v, true
}
