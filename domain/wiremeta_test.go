package domain

import (
	"encoding/json"
	"testing"
	"time"
)

// TestParseWireMetaMatchesJSON: wherever the fast path accepts metadata,
// it gives exactly what encoding/json gives; Encode's own output always
// takes the fast path.
func TestParseWireMetaMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 30, 0, 123456789, time.UTC)
	var encoded []string
	for _, m := range []EventMeta{
		{CommandID: "c-1", CorrelationID: "corr", CausationID: "cause", OccurredAt: at},
		{CommandID: "c-2", OccurredAt: at.Truncate(time.Second)},
		{CommandID: "c-3", CausationID: "x", OccurredAt: at},
		{CommandID: "c-4", CorrelationID: "corr", CommandFingerprint: "0123456789abcdef0123456789abcdef", OccurredAt: at},
	} {
		_, _, md, err := EncodeEvent(Event{Type: EvtOrderDelivered, Data: OrderDelivered{}, Meta: m})
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, string(md))
	}
	for _, in := range encoded {
		var fast wireMeta
		if !parseWireMeta([]byte(in), &fast) {
			t.Errorf("Encode's metadata %s does not take the fast path", in)
		}
	}
	inputs := append(encoded,
		`{"command_id":"a\u0041","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`,
		`{"command_id": "a","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`,
		`{"occurred_at":"2026-11-24T09:30:00Z","command_id":"a","schema_version":1}`,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00+02:00","schema_version":2}`,
		`{"command_id":"a","occurred_at":"not a time","schema_version":1}`,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00Z","schema_version":1} `,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00Z","schema_version":1,"x":2}`,
		`{"command_id":"é","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00Z","schema_version":99999999999}`,
	)
	for _, in := range inputs {
		var fast, slow wireMeta
		ok := parseWireMeta([]byte(in), &fast)
		err := json.Unmarshal([]byte(in), &slow)
		if ok && (err != nil || fast.CommandID != slow.CommandID || fast.CorrelationID != slow.CorrelationID ||
			fast.CausationID != slow.CausationID || fast.CommandFingerprint != slow.CommandFingerprint ||
			!fast.OccurredAt.Equal(slow.OccurredAt) || fast.SchemaVersion != slow.SchemaVersion) {
			t.Errorf("%s: fast path %+v, encoding/json %+v (%v)", in, fast, slow, err)
		}
	}
}

// FuzzParseWireMeta: the fast path never accepts what encoding/json reads
// differently.
func FuzzParseWireMeta(f *testing.F) {
	f.Add(`{"command_id":"c","correlation_id":"k","occurred_at":"2026-11-24T09:30:00.5Z","schema_version":1}`)
	f.Add(`{"command_id":"c","occurred_at":"2026-11-24T09:30:00Z","schema_version":2}`)
	f.Add(`{"command_id":"c","causation_id":"x","command_fingerprint":"00ff","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`)
	f.Fuzz(func(t *testing.T, in string) {
		var fast, slow wireMeta
		if !parseWireMeta([]byte(in), &fast) {
			return
		}
		if err := json.Unmarshal([]byte(in), &slow); err != nil {
			t.Fatalf("%q: fast path accepted what encoding/json refuses: %v", in, err)
		}
		if fast.CommandID != slow.CommandID || fast.CorrelationID != slow.CorrelationID || fast.CausationID != slow.CausationID ||
			fast.CommandFingerprint != slow.CommandFingerprint || !fast.OccurredAt.Equal(slow.OccurredAt) || fast.SchemaVersion != slow.SchemaVersion {
			t.Fatalf("%q: fast %+v, encoding/json %+v", in, fast, slow)
		}
	})
}

// TestParseCanonicalUTC: the fast timestamp reader accepts only what
// time.Parse reads to the same instant and Format writes back unchanged.
func TestParseCanonicalUTC(t *testing.T) {
	for _, in := range []string{
		"2026-11-24T09:30:00Z", "2026-11-24T09:30:00.5Z", "2026-11-24T09:30:00.123456789Z", "2024-02-29T23:59:59.000000001Z",
		"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.99Z",
		"2026-02-29T09:30:00Z", "2026-04-31T09:30:00Z", "2026-13-01T09:30:00Z", "2026-00-01T09:30:00Z", "2026-11-00T09:30:00Z",
		"2026-11-24T24:00:00Z", "2026-11-24T09:60:00Z", "2026-11-24T09:30:60Z", "2026-11-24T09:30:00.50Z", "2026-11-24T09:30:00.Z",
		"2026-11-24T09:30:00.1234567891Z", "2026-11-24T09:30:00+00:00", "2026-11-24t09:30:00Z", "2026-11-24T9:30:00Z",
		"2026-11-24T09:30:00,5Z", "+026-11-24T09:30:00Z", "2026-11-24T09:30:00.-5Z", "2026-11-24T09:30:00z",
	} {
		checkCanonicalUTC(t, in)
	}
}

func checkCanonicalUTC(t *testing.T, in string) {
	t.Helper()
	got, ok := parseCanonicalUTC(in)
	want, err := time.Parse(time.RFC3339Nano, in)
	canonical := err == nil && want.Location() == time.UTC && want.Format(time.RFC3339Nano) == in
	if ok != canonical || ok && (!got.Equal(want) || got.Location() != want.Location()) {
		t.Fatalf("%q: fast (%v, %v), time.Parse (%v, %v, canonical %v)", in, got, ok, want, err, canonical)
	}
}

// FuzzParseCanonicalUTC: the fast timestamp reader and time.Parse with
// the canonical-form check agree on every input.
func FuzzParseCanonicalUTC(f *testing.F) {
	f.Add("2026-11-24T09:30:00.123Z")
	f.Add("2024-02-29T23:59:59Z")
	f.Fuzz(checkCanonicalUTC)
}
