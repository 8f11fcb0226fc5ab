package jsonwire

import "github.com/ordo-dev/ordo/domain"

// NewCodec returns the domain's event codec reading payloads and metadata
// with Unmarshal: the same events as domain.NewCodec, decoded faster.
func NewCodec() *domain.Codec { return domain.NewCodec().WithUnmarshal(Unmarshal) }

// codec backs DecodeEvent; it is immutable.
var codec = NewCodec()

// DecodeEvent is domain.DecodeEvent read with Unmarshal; every place that
// decodes stored events uses it.
func DecodeEvent(eventType string, data, metadata []byte) (domain.Event, error) {
	return codec.Decode(eventType, data, metadata)
}
