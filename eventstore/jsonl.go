package eventstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// exportLine is one event in an export file (JSON Lines, one event per
// line, in $all order). Data and metadata are embedded as JSON when they
// are JSON, which is what Ordo writes, and base64 otherwise.
type exportLine struct {
	Stream      string          `json:"stream"`
	Revision    uint64          `json:"revision"`
	Position    uint64          `json:"position"`
	ID          uuid.UUID       `json:"id"`
	Type        string          `json:"type"`
	Created     time.Time       `json:"created"`
	Data        json.RawMessage `json:"data,omitempty"`
	DataB64     string          `json:"data_base64,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	MetadataB64 string          `json:"metadata_base64,omitempty"`
}

// MarshalExportLine renders e as one line of an export file (without the
// newline).
func MarshalExportLine(e RecordedEvent) ([]byte, error) {
	l := exportLine{Stream: e.Stream, Revision: e.Revision, Position: e.Position, ID: e.ID, Type: e.Type, Created: e.Created}
	l.Data, l.DataB64 = embed(e.Data)
	l.Metadata, l.MetadataB64 = embed(e.Metadata)
	return json.Marshal(l)
}

// embed returns b as raw JSON if encoding/json will write it back byte for
// byte (it compacts and HTML-escapes what it embeds), else as base64, so an
// export round trip never changes an event's bytes.
func embed(b []byte) (raw json.RawMessage, b64 string) {
	if len(b) == 0 {
		return nil, ""
	}
	var compact, escaped bytes.Buffer
	if json.Compact(&compact, b) == nil {
		json.HTMLEscape(&escaped, compact.Bytes())
		if bytes.Equal(escaped.Bytes(), b) {
			return json.RawMessage(b), ""
		}
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// UnmarshalExportLine reads one line of an export file.
func UnmarshalExportLine(line []byte) (RecordedEvent, error) {
	var l exportLine
	if err := json.Unmarshal(line, &l); err != nil {
		return RecordedEvent{}, fmt.Errorf("not an export line: %w", err)
	}
	if l.Stream == "" || l.Type == "" || l.ID == uuid.Nil {
		return RecordedEvent{}, fmt.Errorf("export line lacks stream, type or id")
	}
	e := RecordedEvent{Stream: l.Stream, Revision: l.Revision, Position: l.Position, ID: l.ID, Type: l.Type, Created: l.Created}
	var err error
	if e.Data, err = unembed(l.Data, l.DataB64); err != nil {
		return RecordedEvent{}, fmt.Errorf("data of %s@%d: %w", l.Stream, l.Revision, err)
	}
	if e.Metadata, err = unembed(l.Metadata, l.MetadataB64); err != nil {
		return RecordedEvent{}, fmt.Errorf("metadata of %s@%d: %w", l.Stream, l.Revision, err)
	}
	return e, nil
}

func unembed(raw json.RawMessage, b64 string) ([]byte, error) {
	if b64 != "" {
		return base64.StdEncoding.DecodeString(b64)
	}
	if len(raw) == 0 {
		return nil, nil
	}
	return []byte(raw), nil
}
