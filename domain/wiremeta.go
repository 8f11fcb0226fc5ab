package domain

import (
	"strconv"
	"strings"
	"time"
)

// parseWireMeta reads metadata in exactly the layout Encode writes —
// {"command_id":"…"[,"correlation_id":"…"][,"causation_id":"…"]
// [,"command_fingerprint":"…"],"occurred_at":"…","schema_version":N} with no spaces and no escapes —
// without reflection. Metadata is decoded for every event of every load,
// replay and projection, and encoding/json spent more time on it than on
// the payload. Anything else (written by another tool, reordered, escaped)
// returns false and Decode falls back to encoding/json, so the result is
// always what encoding/json would give.
func parseWireMeta(b []byte, m *wireMeta) bool {
	// One string for the whole input: the IDs are slices of it, one
	// allocation instead of one each.
	p := metaParser{b: string(b)}
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
	if p.lit(`,"command_fingerprint":`) {
		if m.CommandFingerprint, ok = p.str(); !ok {
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
	t, ok := parseCanonicalUTC(at)
	if !ok {
		var err error
		t, err = time.Parse(time.RFC3339Nano, at)
		// Only the canonical form Encode writes: time.Parse is more
		// lenient than encoding/json (a one-digit hour, say).
		if err != nil || t.Format(time.RFC3339Nano) != at {
			return false
		}
	}
	m.OccurredAt = t
	if !p.lit(`,"schema_version":`) {
		return false
	}
	i := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[i:p.i]
	v, err := strconv.Atoi(digits)
	if err != nil || len(digits) > 9 || len(digits) > 1 && digits[0] == '0' || !p.lit(`}`) || p.i != len(p.b) {
		return false
	}
	m.SchemaVersion = v
	return true
}

type metaParser struct {
	b string
	i int
}

// lit consumes s if it comes next.
func (p *metaParser) lit(s string) bool {
	if !strings.HasPrefix(p.b[p.i:], s) {
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
			return p.b[start:j], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false // escapes and non-ASCII: leave them to encoding/json
		}
	}
	return "", false
}

// parseCanonicalUTC reads a time in the form Encode writes for UTC, which
// is time.RFC3339Nano's: 2006-01-02T15:04:05[.fraction]Z, the fraction 1-9
// digits without trailing zeros. It checks the ranges time.Parse checks
// (month, day of that month, hour, minute, second). Anything else is false,
// and the caller asks time.Parse; this is only the cheaper way to the same
// result, without the Format round trip that proves the form canonical.
func parseCanonicalUTC(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		v := 0
		for i := from; i < to; i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			v = v*10 + int(s[i]-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	switch frac := s[19 : len(s)-1]; {
	case frac == "":
	case len(frac) < 2 || len(frac) > 10 || frac[0] != '.' || frac[len(frac)-1] == '0':
		return time.Time{}, false
	default:
		f, ok := num(20, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			f *= 10
		}
		nsec = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// daysIn is the number of days of month m in year.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
