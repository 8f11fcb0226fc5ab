package persistent

import (
	"slices"
	"strings"
)

// Info is what EventStoreDB reports about a group (GetInfo and List).
type Info struct {
	EventSource, GroupName, Status string
	Connections                    []ConnectionInfo
	AveragePerSecond               int64
	TotalItems                     int64
	CountSinceLastMeasurement      int64
	LastCheckpointedEventPosition  string // "" until the first checkpoint
	LastKnownEventPosition         string // "" until the first event is read
	StartFrom                      string
	Settings                       Settings
	ReadBufferCount                int
	LiveBufferCount                int64
	RetryBufferCount               int
	TotalInFlightMessages          int
	OutstandingMessagesCount       int
	ParkedMessageCount             int64
}

// ConnectionInfo describes one consumer.
type ConnectionInfo struct {
	From, Username, ConnectionName string
	AverageItemsPerSecond          int64
	TotalItems                     int64
	CountSinceLastMeasurement      int64
	AvailableSlots                 int
	InFlightMessages               int
	ExtraStatistics                []Measurement
}

// info measures the group; averages are over the time since the last call,
// as in EventStoreDB.
func (g *group) info() Info {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.m.now()
	elapsed := now.Sub(g.statsAt)
	perSecond := func(n int64) int64 {
		if elapsed <= 0 {
			return 0
		}
		return int64(float64(n) / elapsed.Seconds())
	}
	in := Info{
		EventSource: g.spec.Source.Stream, GroupName: g.spec.Group, Status: g.status(),
		TotalItems: g.totalItems, CountSinceLastMeasurement: g.totalItems - g.statsItems,
		AveragePerSecond:              perSecond(g.totalItems - g.statsItems),
		LastCheckpointedEventPosition: g.lastCheckpointed,
		StartFrom:                     g.spec.startString(), Settings: g.spec.Settings,
		ReadBufferCount: g.unsentCount(), RetryBufferCount: len(g.retries),
		OutstandingMessagesCount: len(g.outstanding), ParkedMessageCount: g.parkedCount(),
	}
	if g.hasSeen {
		in.LastKnownEventPosition = positionString(g.all, g.lastSeen)
	}
	g.statsAt, g.statsItems = now, g.totalItems
	for _, c := range g.consumers {
		ci := ConnectionInfo{From: c.from, Username: c.user, ConnectionName: c.name, TotalItems: c.total,
			CountSinceLastMeasurement: c.total - c.lastTotal, AverageItemsPerSecond: perSecond(c.total - c.lastTotal),
			AvailableSlots: c.free(), InFlightMessages: len(c.inflight)}
		if c.extraStats {
			ci.ExtraStatistics = c.measurements()
		}
		c.lastTotal = c.total
		in.TotalInFlightMessages += len(c.inflight)
		in.Connections = append(in.Connections, ci)
	}
	slices.SortFunc(in.Connections, func(a, b ConnectionInfo) int {
		return strings.Compare(a.From+a.ConnectionName, b.From+b.ConnectionName)
	})
	return in
}

// status is EventStoreDB's PersistentSubscriptionState as text.
func (g *group) status() string {
	s := "NotReady"
	switch {
	case !g.ready:
	case g.live:
		s = "Live"
	default:
		s = "Behind"
	}
	if g.replaying {
		s += ", ReplayingParkedMessages"
	}
	return s
}

func (g *group) unsentCount() int {
	n := 0
	for _, m := range g.buffer {
		if !m.skip {
			n++
		}
	}
	return n
}
