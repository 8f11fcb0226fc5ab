package nats

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// The stock API's JSON (StockRequest, StockReply) is written and read here
// without reflection in the one layout Go's encoding/json writes for
// them, because a flash sale sends tens of thousands per second through
// one process and encoding/json was a fifth of its CPU time. Anything
// else a client sends (other field order, spaces, escapes, non-ASCII,
// errors) goes through encoding/json, so the result is always what
// encoding/json gives; stock_wire_test.go holds the two equal, also as
// fuzz targets.

// marshalStockRequest is json.Marshal(r).
func marshalStockRequest(r StockRequest) []byte {
	if !plainJSON(r.CommandID) || !plainJSON(r.OrderID) {
		b, _ := json.Marshal(r) // a struct of strings and an int cannot fail
		return b
	}
	b := make([]byte, 0, 48+len(r.CommandID)+len(r.OrderID))
	b = append(b, '{')
	sep := false
	field := func(name string) {
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if r.CommandID != "" {
		field("command_id")
		b = appendPlainString(b, r.CommandID)
	}
	if r.OrderID != "" {
		field("order_id")
		b = appendPlainString(b, r.OrderID)
	}
	if r.Quantity != 0 {
		field("quantity")
		b = strconv.AppendInt(b, r.Quantity, 10)
	}
	return append(b, '}')
}

// decodeStockRequest reads a request body as the stock API always has: an
// empty body is an empty request; otherwise one JSON object with no
// unknown fields (json.Decoder with DisallowUnknownFields).
func decodeStockRequest(data []byte) (StockRequest, error) {
	var r StockRequest
	if parseStockRequest(data, &r) {
		return r, nil
	}
	r = StockRequest{}
	if len(bytes.TrimSpace(data)) == 0 {
		return r, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	err := d.Decode(&r)
	return r, err
}

// parseStockRequest reads exactly what marshalStockRequest writes for
// plain strings; false means "use encoding/json".
func parseStockRequest(data []byte, r *StockRequest) bool {
	p := wireScanner{b: data}
	if !p.lit(`{`) {
		return false
	}
	if p.lit(`}`) {
		return p.end()
	}
	comma := false // a field came before: the next needs a comma
	var ok bool
	if p.key(comma, `"command_id":`) {
		if r.CommandID, ok = p.str(); !ok || r.CommandID == "" {
			return false
		}
		comma = true
	}
	if p.key(comma, `"order_id":`) {
		if r.OrderID, ok = p.str(); !ok || r.OrderID == "" {
			return false
		}
		comma = true
	}
	if p.key(comma, `"quantity":`) {
		if r.Quantity, ok = p.int(); !ok || r.Quantity == 0 {
			return false
		}
		comma = true
	}
	return comma && p.lit(`}`) && p.end()
}

// marshalStockReply is json.Marshal(r).
func marshalStockReply(r StockReply) []byte {
	fast := r.Error == nil && plainJSON(r.SKU) && plainJSON(r.CommandID)
	for _, e := range r.Events {
		fast = fast && plainJSON(e)
	}
	if !fast {
		b, _ := json.Marshal(r) // strings, integers and a struct of strings cannot fail
		return b
	}
	b := make([]byte, 0, 160+len(r.SKU)+len(r.CommandID))
	b = append(b, `{"sku":`...)
	b = appendPlainString(b, r.SKU)
	b = append(b, `,"on_hand":`...)
	b = strconv.AppendInt(b, r.OnHand, 10)
	b = append(b, `,"reserved":`...)
	b = strconv.AppendInt(b, r.Reserved, 10)
	b = append(b, `,"available":`...)
	b = strconv.AppendInt(b, r.Available, 10)
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, r.Revision, 10)
	if r.CommandID != "" {
		b = append(b, `,"command_id":`...)
		b = appendPlainString(b, r.CommandID)
	}
	if len(r.Events) > 0 {
		b = append(b, `,"events":[`...)
		for i, e := range r.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPlainString(b, e)
		}
		b = append(b, ']')
	}
	if r.Position != 0 {
		b = append(b, `,"position":`...)
		b = strconv.AppendUint(b, r.Position, 10)
	}
	return append(b, '}')
}

// unmarshalStockReply is json.Unmarshal(data, r) into a zero r.
func unmarshalStockReply(data []byte, r *StockReply) error {
	if parseStockReply(data, r) {
		return nil
	}
	*r = StockReply{}
	return json.Unmarshal(data, r)
}

// parseStockReply reads exactly what marshalStockReply writes without
// falling back; false means "use encoding/json".
func parseStockReply(data []byte, r *StockReply) bool {
	p := wireScanner{b: data}
	var ok bool
	if !p.lit(`{"sku":`) {
		return false
	}
	if r.SKU, ok = p.str(); !ok {
		return false
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{`,"on_hand":`, &r.OnHand}, {`,"reserved":`, &r.Reserved}, {`,"available":`, &r.Available}, {`,"revision":`, &r.Revision}} {
		if !p.lit(f.name) {
			return false
		}
		if *f.v, ok = p.int(); !ok {
			return false
		}
	}
	if p.lit(`,"command_id":`) {
		if r.CommandID, ok = p.str(); !ok || r.CommandID == "" {
			return false
		}
	}
	if p.lit(`,"events":[`) {
		for {
			e, ok := p.str()
			if !ok {
				return false
			}
			r.Events = append(r.Events, e)
			if p.lit(`]`) {
				break
			}
			if !p.lit(`,`) {
				return false
			}
		}
	}
	if p.lit(`,"position":`) {
		if r.Position, ok = p.uint(); !ok || r.Position == 0 {
			return false
		}
	}
	return p.lit(`}`) && p.end()
}

// plainJSON reports whether encoding/json writes s as its bytes between
// quotes: printable ASCII with nothing it escapes (" \ < > &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func appendPlainString(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// wireScanner reads the fixed layouts above; every method either consumes
// what it reads or reports false.
type wireScanner struct {
	b []byte
	i int
}

func (p *wireScanner) end() bool { return p.i == len(p.b) }

// lit consumes s if it comes next.
func (p *wireScanner) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str consumes a JSON string of printable ASCII without escapes.
func (p *wireScanner) str() (string, bool) {
	if !p.lit(`"`) {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
	}
	return "", false
}

// key consumes name (`"field":`), after a comma when one is due.
func (p *wireScanner) key(comma bool, name string) bool {
	i := p.i
	if comma && !p.lit(",") || !p.lit(name) {
		p.i = i
		return false
	}
	return true
}

// int consumes an integer in the form encoding/json writes (no leading
// zeros, no "-0") that fits an int64.
func (p *wireScanner) int() (int64, bool) {
	neg := p.lit("-")
	u, ok := p.uint()
	switch {
	case !ok:
		return 0, false
	case !neg:
		return int64(u), u <= math.MaxInt64
	default:
		return -int64(u), u != 0 && u <= 1<<63 // -int64(1<<63) wraps to MinInt64, as wanted
	}
}

// uint consumes an unsigned integer in the form encoding/json writes that
// fits a uint64.
func (p *wireScanner) uint() (uint64, bool) {
	start := p.i
	var v uint64
	for ; p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9'; p.i++ {
		d := uint64(p.b[p.i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	n := p.i - start
	return v, n > 0 && (n == 1 || p.b[start] != '0')
}
