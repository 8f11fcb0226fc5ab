package jsonwire

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"time"
)

// kind is how a Go type is read.
type kind uint8

const (
	unsupported kind = iota // the fast path gives up on it
	stringKind
	intKind
	uintKind
	boolKind
	timeKind // time.Time, in its canonical RFC 3339 form
	structKind
	sliceKind
)

// plan says how to read one Go type; it is built once per type.
type plan struct {
	kind   kind
	size   uintptr      // intKind, uintKind: the integer's size in bytes
	fields []field      // structKind: the keys encoding/json would match
	elem   *plan        // sliceKind
	typ    reflect.Type // sliceKind: the slice type
}

// field is one key of a struct: its name in JSON and where the value lies,
// from the start of the struct (through embedded structs, as encoding/json
// promotes their fields).
type field struct {
	name   string
	offset uintptr
	plan   *plan
}

// maxFields bounds a struct's keys: the reader marks each key it has seen
// in one uint64.
const maxFields = 64

var (
	plans           sync.Map // reflect.Type → *plan
	timeType        = reflect.TypeFor[time.Time]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// planOf returns t's plan, building it on first use.
func planOf(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := build(t, map[reflect.Type]bool{})
	actual, _ := plans.LoadOrStore(t, p)
	return actual.(*plan)
}

// build makes t's plan; building holds the struct types being built, so a
// recursive type is unsupported instead of endless.
func build(t reflect.Type, building map[reflect.Type]bool) *plan {
	if t == timeType {
		return &plan{kind: timeKind}
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return &plan{} // it reads itself: encoding/json calls it
	}
	switch t.Kind() {
	case reflect.String:
		return &plan{kind: stringKind}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &plan{kind: intKind, size: t.Size()}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &plan{kind: uintKind, size: t.Size()}
	case reflect.Bool:
		return &plan{kind: boolKind}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return &plan{} // []byte is base64 in JSON
		}
		elem := build(t.Elem(), building)
		if elem.kind == unsupported {
			return &plan{}
		}
		return &plan{kind: sliceKind, elem: elem, typ: t}
	case reflect.Struct:
		if building[t] {
			return &plan{}
		}
		building[t] = true
		defer delete(building, t)
		var fields []field
		if !collectFields(t, 0, building, &fields) || len(fields) > maxFields {
			return &plan{}
		}
		return &plan{kind: structKind, fields: fields}
	}
	return &plan{}
}

// collectFields appends t's keys, promoting the fields of embedded structs
// as encoding/json does. It is false for what this reader leaves to
// encoding/json whole: a key two fields claim (encoding/json's rules for
// that are subtle), an embedded pointer, a tag name it does not read.
func collectFields(t reflect.Type, offset uintptr, building map[reflect.Type]bool, out *[]field) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			if !f.IsExported() || f.Type.Kind() != reflect.Struct || build(f.Type, building).kind != structKind {
				// An unexported embedded struct (reflect cannot set its
				// fields), an embedded pointer or non-struct, or a type
				// that reads itself.
				return false
			}
			if !collectFields(f.Type, offset+f.Offset, building, out) {
				return false
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !plainName(name) {
			return false
		}
		p := build(f.Type, building)
		if hasOption(opts, "string") {
			p = &plan{} // a number or bool quoted as a string
		}
		for _, g := range *out {
			if g.name == name {
				return false
			}
		}
		*out = append(*out, field{name: name, offset: offset + f.Offset, plan: p})
	}
	return true
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// plainName is true for the key names this reader matches: letters,
// digits, '_' and '-'.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}
