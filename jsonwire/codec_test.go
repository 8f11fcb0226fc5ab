package jsonwire

import (
	"reflect"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/domain"
)

// checkCodecs fails when the event codec reading through this package and
// the domain's own (encoding/json) disagree on an event: both must refuse
// it, or both give the same event.
func checkCodecs(t testing.TB, typ string, data, meta []byte) {
	t.Helper()
	got, err := NewCodec().Decode(typ, data, meta)
	want, wantErr := domain.NewCodec().Decode(typ, data, meta)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%s %q %q: error %v, domain's codec %v", typ, data, meta, err, wantErr)
	}
	if err != nil {
		return
	}
	if !got.Meta.OccurredAt.Equal(want.Meta.OccurredAt) || got.Meta.OccurredAt.Location().String() != want.Meta.OccurredAt.Location().String() {
		t.Fatalf("%s %q: time %v, domain's codec %v", typ, meta, got.Meta.OccurredAt, want.Meta.OccurredAt)
	}
	got.Meta.OccurredAt, want.Meta.OccurredAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %q %q: %#v, domain's codec %#v", typ, data, meta, got, want)
	}
}

// TestCodecMatchesDomain: metadata in Encode's layout and around it, read
// through NewCodec, is what domain.NewCodec reads.
func TestCodecMatchesDomain(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 30, 0, 123456789, time.UTC)
	var metas []string
	for _, m := range []domain.EventMeta{
		{CommandID: "c-1", CorrelationID: "corr", CausationID: "cause", OccurredAt: at},
		{CommandID: "c-2", OccurredAt: at.Truncate(time.Second)},
		{CommandID: "c-3", CausationID: "x", OccurredAt: at},
		{CommandID: "c-4", CorrelationID: "corr", CommandFingerprint: "0123456789abcdef0123456789abcdef", OccurredAt: at},
	} {
		_, _, md, err := domain.EncodeEvent(domain.Event{Type: domain.EvtOrderDelivered, Data: domain.OrderDelivered{}, Meta: m})
		if err != nil {
			t.Fatal(err)
		}
		var w wireMeta
		if !TryUnmarshal(md, &w) {
			t.Errorf("Encode's metadata %s does not take the fast path", md)
		}
		metas = append(metas, string(md))
	}
	metas = append(metas, "", "  ",
		`{"command_id":"a\u0041","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`,
		`{"command_id": "a","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`,
		`{"occurred_at":"2026-11-24T09:30:00Z","command_id":"a","schema_version":1}`,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00+02:00","schema_version":1}`,
		`{"command_id":"a","occurred_at":"not a time","schema_version":1}`,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00Z","schema_version":1} `,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00Z","schema_version":1,"x":2}`,
		`{"command_id":"é","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00Z","schema_version":99999999999}`,
		`{"command_id":"a","schema_version":2}`,
		`{"schema_version":0}`,
		`{"command_id":"c","causation_id":"x","command_fingerprint":"00ff","occurred_at":"2026-11-24T09:30:00Z","schema_version":1}`,
		`{"command_id":"a","occurred_at":"2026-11-24T09:30:00Z","schema_version":1,"command_id":"b"}`,
	)
	for _, md := range metas {
		checkCodecs(t, domain.EvtOrderDelivered, []byte(`{}`), []byte(md))
		checkCodecs(t, domain.EvtOrderShipped, []byte(`{"carrier":"c","tracking":"t"}`), []byte(md)) // v1, upcast
		checkCodecs(t, domain.EvtOrderShipped, []byte(`{"carrier":"c","tracking_number":"t"}`), []byte(md))
	}
}

// FuzzCodec: the event codec reading through this package and the
// domain's own agree on every event, payload and metadata.
func FuzzCodec(f *testing.F) {
	types := sortedTypes()
	at := time.Date(2026, 11, 24, 9, 30, 0, 500, time.UTC)
	for i, typ := range types {
		_, data, md, _ := domain.EncodeEvent(domain.Event{Type: typ, Data: filled(payloadTypes[typ], i).Interface().(domain.EventData),
			Meta: domain.EventMeta{CommandID: "c", CorrelationID: "k", OccurredAt: at}})
		f.Add(uint8(i), data, md)
	}
	f.Add(uint8(0), []byte(`{}`), []byte(`{"command_id":"c","occurred_at":"2026-11-24T09:30:00Z","schema_version":2}`))
	f.Fuzz(func(t *testing.T, which uint8, data, meta []byte) {
		checkCodecs(t, types[int(which)%len(types)], data, meta)
	})
}
