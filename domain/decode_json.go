package domain

import (
	"encoding/json"
	"unicode/utf8"
)

// Event payloads are decoded for every event of every load, replay and
// verify, and encoding/json (reflection, a validating pre-scan of the whole
// input) was most of the CPU a fold spends per event. The decode_*.go files
// read the payloads without reflection, but only what they fully
// understand: one object of the type's own keys, each at most once, with
// strings without escapes, integers that fit, true and false, and nested
// objects and arrays of the same. Anything else (an unknown key, a key in
// another case, a duplicate, null, an escape, a number with a fraction or
// an exponent, trailing data, malformed input) makes the fast path give up,
// and encoding/json decides, so a payload always decodes to exactly what
// encoding/json makes of it. Tests and fuzz targets hold the two equal.

// A null value leaves its field as it is, as in encoding/json; every field
// starts at its zero value and is read at most once, so that is the zero
// value (nil for a slice).

// fastDecoder returns a payload decoder that tries fast first and falls
// back to encoding/json.
func fastDecoder[T EventData](fast func(*payloadLexer, *T) bool) func([]byte) (EventData, error) {
	return func(b []byte) (EventData, error) {
		var v T
		l := payloadLexer{b: b}
		if fast(&l, &v) && l.end() {
			return v, nil
		}
		var slow T
		if err := json.Unmarshal(b, &slow); err != nil {
			return nil, err
		}
		return slow, nil
	}
}

// payloadLexer reads the subset of JSON the fast decoders accept. Every
// method returns false when the input is outside that subset.
type payloadLexer struct {
	b []byte
	i int
}

func (l *payloadLexer) ws() {
	for l.i < len(l.b) {
		switch l.b[l.i] {
		case ' ', '\t', '\n', '\r':
			l.i++
		default:
			return
		}
	}
}

func (l *payloadLexer) eat(c byte) bool {
	l.ws()
	if l.i < len(l.b) && l.b[l.i] == c {
		l.i++
		return true
	}
	return false
}

// end is true when only whitespace is left.
func (l *payloadLexer) end() bool {
	l.ws()
	return l.i == len(l.b)
}

// object reads an object, calling field with each key (the lexer then at
// its value), which must read the value. Keys are matched exactly:
// encoding/json would also match them in another case.
func (l *payloadLexer) object(field func(key []byte) bool) bool {
	if !l.eat('{') {
		return false
	}
	if l.eat('}') {
		return true
	}
	for {
		k, ok := l.rawString()
		if !ok || !l.eat(':') || !field(k) {
			return false
		}
		if l.eat(',') {
			continue
		}
		return l.eat('}')
	}
}

// once marks key number n in seen, and is false when it was seen before:
// encoding/json merges a repeated object key into the value so far, which
// the fast path does not copy.
func once(seen *uint32, n uint) bool {
	if *seen&(1<<n) != 0 {
		return false
	}
	*seen |= 1 << n
	return true
}

// rawString reads a string without escapes, as bytes of the input.
func (l *payloadLexer) rawString() ([]byte, bool) {
	if !l.eat('"') {
		return nil, false
	}
	start := l.i
	ascii := true
	for ; l.i < len(l.b); l.i++ {
		switch c := l.b[l.i]; {
		case c == '"':
			s := l.b[start:l.i]
			l.i++
			// encoding/json replaces invalid UTF-8 with U+FFFD.
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// null reads a null.
func (l *payloadLexer) null() bool {
	l.ws()
	if len(l.b)-l.i >= 4 && string(l.b[l.i:l.i+4]) == "null" {
		l.i += 4
		return true
	}
	return false
}

func (l *payloadLexer) str(dst *string) bool {
	if l.null() {
		return true
	}
	s, ok := l.rawString()
	if ok {
		*dst = string(s)
	}
	return ok
}

// int reads an integer without fraction or exponent that fits an int64
// with room to spare (at most 18 digits).
func (l *payloadLexer) int(dst *int64) bool {
	if l.null() {
		return true
	}
	neg := l.i < len(l.b) && l.b[l.i] == '-'
	if neg {
		l.i++
	}
	start := l.i
	var v int64
	for l.i < len(l.b) && l.b[l.i] >= '0' && l.b[l.i] <= '9' {
		v = v*10 + int64(l.b[l.i]-'0')
		l.i++
	}
	n := l.i - start
	if n == 0 || n > 18 || n > 1 && l.b[start] == '0' {
		return false
	}
	if l.i < len(l.b) {
		switch l.b[l.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	if neg {
		v = -v
	}
	*dst = v
	return true
}

func (l *payloadLexer) bool(dst *bool) bool {
	if l.null() {
		return true
	}
	switch {
	case len(l.b)-l.i >= 4 && string(l.b[l.i:l.i+4]) == "true":
		*dst, l.i = true, l.i+4
	case len(l.b)-l.i >= 5 && string(l.b[l.i:l.i+5]) == "false":
		*dst, l.i = false, l.i+5
	default:
		return false
	}
	return true
}

// array reads an array, calling elem for each element.
func (l *payloadLexer) array(elem func() bool) bool {
	if !l.eat('[') {
		return false
	}
	if l.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if l.eat(',') {
			continue
		}
		return l.eat(']')
	}
}

// stringList reads an array of strings; an empty one is an empty, non-nil
// slice, as encoding/json makes it.
func (l *payloadLexer) stringList(dst *[]string) bool {
	if l.null() {
		return true
	}
	out := make([]string, 0, 2)
	ok := l.array(func() bool {
		var s string
		if !l.str(&s) {
			return false
		}
		out = append(out, s)
		return true
	})
	*dst = out
	return ok
}

func (l *payloadLexer) money(dst *Money) bool {
	if l.null() {
		return true
	}
	var seen uint32
	return l.object(func(k []byte) bool {
		switch string(k) {
		case "amount":
			return once(&seen, 0) && l.int(&dst.Amount)
		case "currency":
			return once(&seen, 1) && l.str(&dst.Currency)
		}
		return false
	})
}

// emptyObject reads the payload of an event without fields: "{}".
func emptyObject[T EventData](l *payloadLexer, _ *T) bool {
	return l.object(func([]byte) bool { return false })
}
