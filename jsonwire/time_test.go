package jsonwire

import (
	"encoding/json"
	"testing"
	"time"
)

// TestParseTime: the fast timestamp reader accepts only what time.Parse
// reads to the same instant and Format writes back unchanged, and then
// what encoding/json reads; the UTC shortcut agrees with time.Parse.
func TestParseTime(t *testing.T) {
	for _, in := range []string{
		"2026-11-24T09:30:00Z", "2026-11-24T09:30:00.5Z", "2026-11-24T09:30:00.123456789Z", "2024-02-29T23:59:59.000000001Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.99Z",
		"2026-02-29T09:30:00Z", "2026-04-31T09:30:00Z", "2026-13-01T09:30:00Z", "2026-00-01T09:30:00Z", "2026-11-00T09:30:00Z",
		"2026-11-24T24:00:00Z", "2026-11-24T09:60:00Z", "2026-11-24T09:30:60Z", "2026-11-24T09:30:00.50Z", "2026-11-24T09:30:00.Z",
		"2026-11-24T09:30:00.1234567891Z", "2026-11-24T09:30:00+00:00", "2026-11-24t09:30:00Z", "2026-11-24T9:30:00Z",
		"2026-11-24T09:30:00,5Z", "+026-11-24T09:30:00Z", "2026-11-24T09:30:00.-5Z", "2026-11-24T09:30:00z",
		"2026-11-24T09:30:00+02:00", "2026-11-24T09:30:00-23:59",
	} {
		checkTime(t, in)
	}
}

func checkTime(t *testing.T, in string) {
	t.Helper()
	got, ok := parseCanonicalUTC([]byte(in))
	want, err := time.Parse(time.RFC3339Nano, in)
	canonical := err == nil && want.Location() == time.UTC && want.Format(time.RFC3339Nano) == in
	if ok != canonical || ok && (!got.Equal(want) || got.Location() != want.Location()) {
		t.Fatalf("%q: UTC shortcut (%v, %v), time.Parse (%v, %v, canonical %v)", in, got, ok, want, err, canonical)
	}
	got, ok = parseTime([]byte(in))
	var viaJSON time.Time
	jerr := json.Unmarshal([]byte(`"`+in+`"`), &viaJSON)
	if ok && (jerr != nil || !got.Equal(viaJSON) || got.Location().String() != viaJSON.Location().String()) {
		t.Fatalf("%q: parseTime %v, encoding/json %v (%v)", in, got, viaJSON, jerr)
	}
}

// FuzzParseTime: the fast timestamp reader agrees with time.Parse and
// encoding/json on every input.
func FuzzParseTime(f *testing.F) {
	f.Add("2026-11-24T09:30:00.123Z")
	f.Add("2024-02-29T23:59:59Z")
	f.Add("2026-11-24T09:30:00+02:00")
	f.Fuzz(checkTime)
}
