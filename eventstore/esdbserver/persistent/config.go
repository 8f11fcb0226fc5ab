package persistent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// The group definitions live in the store itself, as in EventStoreDB: the
// latest event of configStream holds all of them. Writing it is a durable
// append, so a definition the client was told about survives any crash.
const (
	configStream    = "$persistentSubscriptionConfig"
	configEventType = "$PersistentConfig"
	configVersion   = "2"
)

// configDoc is EventStoreDB's PersistentSubscriptionConfig, in its JSON.
type configDoc struct {
	Version   string        `json:"version"`
	Updated   time.Time     `json:"updated"`
	UpdatedBy string        `json:"updatedBy"`
	Entries   []configEntry `json:"entries"`
}

// configEntry is one group (EventStoreDB's PersistentSubscriptionEntry),
// plus StartAfter: where a group created from the end starts when it has
// no checkpoint yet. EventStoreDB starts such a group at whatever the end
// is when it loads it, so events written between creation and a restart
// were never delivered; recording the end at creation closes that gap.
type configEntry struct {
	Stream                string     `json:"stream"`
	Group                 string     `json:"group"`
	Filter                *filterDTO `json:"filter,omitempty"`
	ResolveLinkTos        bool       `json:"resolveLinkTos"`
	ExtraStatistics       bool       `json:"extraStatistics"`
	MessageTimeout        int        `json:"messageTimeout"`
	StartFrom             int64      `json:"startFrom"`
	StartPosition         string     `json:"startPosition"`
	LiveBufferSize        int        `json:"liveBufferSize"`
	HistoryBufferSize     int        `json:"historyBufferSize"`
	MaxRetryCount         int        `json:"maxRetryCount"`
	ReadBatchSize         int        `json:"readBatchSize"`
	PreferRoundRobin      bool       `json:"preferRoundRobin"`
	CheckPointAfter       int        `json:"checkPointAfter"`
	MinCheckPointCount    int        `json:"minCheckPointCount"`
	MaxCheckPointCount    int        `json:"maxCheckPointCount"`
	MaxSubscriberCount    int        `json:"maxSubscriberCount"`
	NamedConsumerStrategy string     `json:"namedConsumerStrategy"`
	StartAfter            *uint64    `json:"ordoStartAfter,omitempty"`
}

// filterDTO is EventStoreDB's EventFilterDto.
type filterDTO struct {
	Context string   `json:"context"` // "streamid" or "eventtype"
	Type    string   `json:"type"`    // "prefix" or "regex"
	Data    []string `json:"data"`
}

func newEntry(spec Spec) configEntry {
	st := spec.Settings
	e := configEntry{
		Stream: spec.Source.Stream, Group: spec.Group, Filter: toDTO(spec.Source.Filter),
		ResolveLinkTos: st.ResolveLinkTos, ExtraStatistics: st.ExtraStatistics,
		MessageTimeout: int(st.MessageTimeout / time.Millisecond), StartPosition: spec.startString(),
		LiveBufferSize: st.LiveBufferSize, HistoryBufferSize: st.HistoryBufferSize, MaxRetryCount: st.MaxRetryCount,
		ReadBatchSize: st.ReadBatchSize, PreferRoundRobin: st.ConsumerStrategy == RoundRobin,
		CheckPointAfter: int(st.CheckpointAfter / time.Millisecond), MinCheckPointCount: st.MinCheckpointCount,
		MaxCheckPointCount: st.MaxCheckpointCount, MaxSubscriberCount: st.MaxSubscriberCount,
		NamedConsumerStrategy: st.ConsumerStrategy,
	}
	switch {
	case spec.Source.IsAll():
		e.StartFrom = -1 << 63 // long.MinValue: not a stream revision
	case spec.Start.End:
		e.StartFrom = -1
	default:
		e.StartFrom = int64(spec.Start.At)
	}
	return e
}

// spec rebuilds the definition an entry was made from.
func (e *configEntry) spec() (Spec, error) {
	s := Spec{Source: Source{Stream: e.Stream}, Group: e.Group, Settings: Settings{
		ResolveLinkTos: e.ResolveLinkTos, ExtraStatistics: e.ExtraStatistics,
		MessageTimeout: time.Duration(e.MessageTimeout) * time.Millisecond, MaxRetryCount: e.MaxRetryCount,
		LiveBufferSize: e.LiveBufferSize, ReadBatchSize: e.ReadBatchSize, HistoryBufferSize: e.HistoryBufferSize,
		CheckpointAfter:    time.Duration(e.CheckPointAfter) * time.Millisecond,
		MinCheckpointCount: e.MinCheckPointCount, MaxCheckpointCount: e.MaxCheckPointCount,
		MaxSubscriberCount: e.MaxSubscriberCount, ConsumerStrategy: e.NamedConsumerStrategy,
	}}
	if s.Settings.ConsumerStrategy == "" { // version 1 entries
		s.Settings.ConsumerStrategy = DispatchToSingle
		if e.PreferRoundRobin {
			s.Settings.ConsumerStrategy = RoundRobin
		}
	}
	f, err := fromDTO(e.Filter)
	if err != nil {
		return Spec{}, err
	}
	s.Source.Filter = f
	switch {
	case e.StartPosition == "-1" || e.StartPosition == "C:-1/P:-1" || (e.StartPosition == "" && e.StartFrom == -1):
		s.Start.End = true
	case e.StartPosition == "":
		s.Start.At = uint64(max(e.StartFrom, 0))
	case s.Source.IsAll():
		var c, p uint64
		if _, err := fmt.Sscanf(e.StartPosition, "C:%d/P:%d", &c, &p); err != nil {
			return Spec{}, fmt.Errorf("group %s: start position %q: %w", key(e.Stream, e.Group), e.StartPosition, err)
		}
		s.Start.At, s.Start.Prepare = c, p
	default:
		if _, err := fmt.Sscanf(e.StartPosition, "%d", &s.Start.At); err != nil {
			return Spec{}, fmt.Errorf("group %s: start position %q: %w", key(e.Stream, e.Group), e.StartPosition, err)
		}
	}
	return s, nil
}

func toDTO(f storage.Filter) *filterDTO {
	switch {
	case len(f.StreamPrefixes) > 0:
		return &filterDTO{Context: "streamid", Type: "prefix", Data: f.StreamPrefixes}
	case f.StreamRegex != "":
		return &filterDTO{Context: "streamid", Type: "regex", Data: []string{f.StreamRegex}}
	case len(f.TypePrefixes) > 0:
		return &filterDTO{Context: "eventtype", Type: "prefix", Data: f.TypePrefixes}
	case f.TypeRegex != "":
		return &filterDTO{Context: "eventtype", Type: "regex", Data: []string{f.TypeRegex}}
	}
	return nil
}

func fromDTO(d *filterDTO) (storage.Filter, error) {
	if d == nil {
		return storage.Filter{}, nil
	}
	var f storage.Filter
	switch {
	case d.Context == "streamid" && d.Type == "prefix":
		f.StreamPrefixes = d.Data
	case d.Context == "eventtype" && d.Type == "prefix":
		f.TypePrefixes = d.Data
	case d.Context == "streamid" && d.Type == "regex" && len(d.Data) == 1:
		f.StreamRegex = d.Data[0]
	case d.Context == "eventtype" && d.Type == "regex" && len(d.Data) == 1:
		f.TypeRegex = d.Data[0]
	default:
		return f, fmt.Errorf("filter %+v: unknown context or type", *d)
	}
	return f, nil
}

// loadConfig reads the latest group definitions; none is an empty set.
func loadConfig(ctx context.Context, store *storage.Store) (configDoc, error) {
	var doc configDoc
	found := false
	err := store.ReadStream(ctx, configStream, 0, true, storage.Backwards, 1, func(r storage.Record) error {
		found = true
		return json.Unmarshal(r.Data, &doc)
	})
	if errors.Is(err, storage.ErrStreamNotFound) || (err == nil && !found) {
		return configDoc{Version: configVersion}, nil
	}
	if err != nil {
		return configDoc{}, fmt.Errorf("read persistent subscription definitions from %s: %w", configStream, err)
	}
	return doc, nil
}

// saveConfig durably writes the definitions. The stream keeps only its
// latest two events readable ($maxCount 2, as EventStoreDB sets it).
func saveConfig(ctx context.Context, store *storage.Store, doc configDoc, now time.Time) error {
	doc.Version, doc.Updated, doc.UpdatedBy = configVersion, now, "$system"
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if err := ensureMaxCount(ctx, store, configStream, 2); err != nil {
		return err
	}
	_, err = store.Append(ctx, configStream, storage.Expected{Kind: storage.ExpectAny},
		[]storage.ProposedEvent{{ID: uuid.New(), Type: configEventType, IsJSON: true, Data: data}})
	if err != nil {
		return fmt.Errorf("save persistent subscription definitions: %w", err)
	}
	return nil
}

// ensureMaxCount gives stream the metadata {"$maxCount": n} unless it has
// metadata already.
func ensureMaxCount(ctx context.Context, store *storage.Store, stream string, n int) error {
	meta := "$$" + stream
	err := store.ReadStream(ctx, meta, 0, true, storage.Backwards, 1, func(storage.Record) error { return nil })
	if err == nil {
		return nil
	}
	if !errors.Is(err, storage.ErrStreamNotFound) {
		return err
	}
	_, err = store.Append(ctx, meta, storage.Expected{Kind: storage.ExpectNoStream},
		[]storage.ProposedEvent{{ID: uuid.New(), Type: storage.TypeMetadata, IsJSON: true, Data: []byte(fmt.Sprintf(`{"$maxCount":%d}`, n))}})
	var wev *storage.WrongExpectedVersionError
	if errors.As(err, &wev) {
		return nil // written meanwhile
	}
	return err
}
