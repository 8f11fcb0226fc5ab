package domain

import (
	"bytes"
	"strconv"
	"time"
)

// parseWireMeta reads metadata in exactly the layout Encode writes —
// {"command_id":"…"[,"correlation_id":"…"][,"causation_id":"…"],
// "occurred_at":"…","schema_version":N} with no spaces and no escapes —
// without reflection. Metadata is decoded for every event of every load,
// replay and projection, and encoding/json spent more time on it than on
// the payload. Anything else (written by another tool, reordered, escaped)
// returns false and Decode falls back to encoding/json, so the result is
// always what encoding/json would give.
func parseWireMeta(b []byte, m *wireMeta) bool {
	p := metaParser{b: b}
	if !p.lit(`{"command_id":`) {
		return false
	}
	var ok bool
	if m.CommandID, ok = p.str(); !ok {
		return false
	}
	if p.lit(`,"correlation_id":`) {
		if m.CorrelationID, ok = p.str(); !ok {
			return false
		}
	}
	if p.lit(`,"causation_id":`) {
		if m.CausationID, ok = p.str(); !ok {
			return false
		}
	}
	if !p.lit(`,"occurred_at":`) {
		return false
	}
	at, ok := p.str()
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	// Only the canonical form Encode writes: time.Parse is more lenient
	// than encoding/json (a one-digit hour, say).
	if err != nil || t.Format(time.RFC3339Nano) != at {
		return false
	}
	m.OccurredAt = t
	if !p.lit(`,"schema_version":`) {
		return false
	}
	i := p.i
	for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
		p.i++
	}
	digits := b[i:p.i]
	v, err := strconv.Atoi(string(digits))
	if err != nil || len(digits) > 9 || len(digits) > 1 && digits[0] == '0' || !p.lit(`}`) || p.i != len(b) {
		return false
	}
	m.SchemaVersion = v
	return true
}

type metaParser struct {
	b []byte
	i int
}

// lit consumes s if it comes next.
func (p *metaParser) lit(s string) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		return false
	}
	p.i += len(s)
	return true
}

// str consumes a JSON string without escapes or control characters.
func (p *metaParser) str() (string, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return string(p.b[start:j]), true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false // escapes and non-ASCII: leave them to encoding/json
		}
	}
	return "", false
}
