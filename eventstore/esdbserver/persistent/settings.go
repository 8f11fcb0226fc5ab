package persistent

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// AllStream is the name of the global log as a subscription source.
const AllStream = "$all"

// Consumer strategies: how a group spreads its events over its consumers.
const (
	// RoundRobin sends each event to the next consumer with a free slot.
	RoundRobin = "RoundRobin"
	// DispatchToSingle sends events to one consumer until it is full, then
	// to the next.
	DispatchToSingle = "DispatchToSingle"
	// Pinned sends all events of one stream to the same consumer (the
	// stream of a link's target when links are resolved).
	Pinned = "Pinned"
	// PinnedByCorrelation pins by the $correlationId of the event's JSON
	// metadata, by stream when there is none.
	PinnedByCorrelation = "PinnedByCorrelation"
)

// Source is what a group reads: one stream, or $all with an optional filter.
type Source struct {
	Stream string         // AllStream for $all
	Filter storage.Filter // $all only; the zero Filter takes everything
}

// IsAll reports whether the source is $all.
func (s Source) IsAll() bool { return s.Stream == AllStream }

// StartFrom is where a group without a checkpoint starts: a stream revision or
// an $all position (inclusive), the beginning, or the end (only what is
// written after the group was created or last updated).
type StartFrom struct {
	End bool
	At  uint64 // revision or position; 0 is the beginning
	// Prepare is an $all position's prepare part (equal to At for every
	// position this store hands out); kept to validate and report it.
	Prepare uint64
}

// Settings are a group's settings, as the clients send them.
type Settings struct {
	ResolveLinkTos     bool
	ExtraStatistics    bool
	MessageTimeout     time.Duration // unacknowledged this long: retried (0: at the next tick, as EventStoreDB does)
	MaxRetryCount      int           // retries before a message is parked
	LiveBufferSize     int
	ReadBatchSize      int
	HistoryBufferSize  int           // events read ahead of the consumers
	CheckpointAfter    time.Duration // 0: only by count
	MinCheckpointCount int
	MaxCheckpointCount int
	MaxSubscriberCount int // 0: unlimited
	ConsumerStrategy   string
}

// Spec is a whole group definition.
type Spec struct {
	Source   Source
	Group    string
	Start    StartFrom
	Settings Settings
}

// key is EventStoreDB's subscription ID: "<stream>::<group>". It names the
// checkpoint and parked-message streams too.
func key(stream, group string) string { return stream + "::" + group }

// InvalidError is a request EventStoreDB refuses as a failed subscription
// operation (bad settings or start position); Reason is its message.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// validate applies EventStoreDB's checks to a definition (and refuses
// negative counts, which it would accept and misbehave on). head is the
// store's last position, the upper bound of an $all start.
func (s *Spec) validate(head storage.Position) error {
	if s.Source.Stream == "" {
		return invalid("Bad stream name.")
	}
	if s.Group == "" {
		return invalid("Bad group name.")
	}
	st := s.Settings
	switch st.ConsumerStrategy {
	case RoundRobin, DispatchToSingle, Pinned, PinnedByCorrelation:
	default:
		return invalid("Consumer strategy %s does not exist.", st.ConsumerStrategy)
	}
	if st.ReadBatchSize >= st.HistoryBufferSize {
		return invalid("ReadBatchSize may not be greater than or equal to BufferSize")
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxRetryCount", st.MaxRetryCount}, {"LiveBufferSize", st.LiveBufferSize}, {"ReadBatchSize", st.ReadBatchSize},
		{"MinCheckPointCount", st.MinCheckpointCount}, {"MaxCheckPointCount", st.MaxCheckpointCount},
		{"MaxSubscriberCount", st.MaxSubscriberCount}} {
		if f.v < 0 {
			return invalid("%s may not be negative (%d)", f.name, f.v)
		}
	}
	if st.MessageTimeout < 0 || st.CheckpointAfter < 0 {
		return invalid("MessageTimeout and CheckPointAfter may not be negative")
	}
	if s.Source.IsAll() && !s.Start.End {
		if s.Start.Prepare > s.Start.At {
			return invalid("Invalid Start From position: prepare position must be less than or equal to the commit position.")
		}
		if s.Start.At > uint64(head) {
			return invalid("Invalid Start From position: commit position must be less than or equal to the last commit position in the transaction file.")
		}
	}
	if err := s.Source.Filter.Validate(); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// startString is the start as EventStoreDB reports it: a revision ("0",
// "-1" for the end) or an $all position ("C:<commit>/P:<prepare>").
func (s *Spec) startString() string {
	if s.Source.IsAll() {
		if s.Start.End {
			return "C:-1/P:-1"
		}
		return fmt.Sprintf("C:%d/P:%d", s.Start.At, s.Start.Prepare)
	}
	if s.Start.End {
		return "-1"
	}
	return strconv.FormatUint(s.Start.At, 10)
}

// positionString formats a group position as EventStoreDB does.
func positionString(all bool, p uint64) string {
	if all {
		return fmt.Sprintf("C:%d/P:%d", p, p)
	}
	return strconv.FormatUint(p, 10)
}

// parsePosition reads what positionString wrote (a checkpoint).
func parsePosition(all bool, s string) (uint64, error) {
	if !all {
		return strconv.ParseUint(s, 10, 64)
	}
	c, p, ok := strings.Cut(strings.TrimPrefix(s, "C:"), "/P:")
	if !ok || !strings.HasPrefix(s, "C:") {
		return 0, fmt.Errorf("$all position %q: want C:<commit>/P:<prepare>", s)
	}
	if _, err := strconv.ParseUint(p, 10, 64); err != nil {
		return 0, fmt.Errorf("$all position %q: %w", s, err)
	}
	return strconv.ParseUint(c, 10, 64)
}
