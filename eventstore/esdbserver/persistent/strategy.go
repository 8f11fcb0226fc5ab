package persistent

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"strings"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// pushResult is a strategy's answer for one message.
type pushResult uint8

const (
	pushSent    pushResult = iota // give it to the returned consumer
	pushSkipped                   // not now (its consumer is full); try later messages
	pushNoRoom                    // nobody can take anything: stop pushing
)

// strategy picks the consumer of each message (EventStoreDB's consumer
// strategies). Methods run under the group's lock.
type strategy interface {
	added(c *Consumer)
	removed(c *Consumer)
	pick(m *message) (*Consumer, pushResult)
}

func newStrategy(name string) strategy {
	switch name {
	case DispatchToSingle:
		return &dispatchToSingle{}
	case Pinned:
		return newPinned(false)
	case PinnedByCorrelation:
		return newPinned(true)
	}
	return &roundRobin{}
}

// roundRobin gives each message to the next consumer in turn that has a
// free slot.
type roundRobin struct{ ring []*Consumer }

func (s *roundRobin) added(c *Consumer) { s.ring = append(s.ring, c) }

func (s *roundRobin) removed(c *Consumer) { s.ring = without(s.ring, c) }

func (s *roundRobin) pick(*message) (*Consumer, pushResult) {
	for range s.ring {
		c := s.ring[0]
		s.ring = append(s.ring[1:], c)
		if c.free() > 0 {
			return c, pushSent
		}
	}
	return nil, pushNoRoom
}

// dispatchToSingle fills the first consumer before moving to the next.
type dispatchToSingle struct{ roundRobin }

func (s *dispatchToSingle) pick(*message) (*Consumer, pushResult) {
	for range s.ring {
		if c := s.ring[0]; c.free() > 0 {
			return c, pushSent
		}
		s.ring = append(s.ring[1:], s.ring[0])
	}
	return nil, pushNoRoom
}

func without(cs []*Consumer, c *Consumer) []*Consumer {
	out := cs[:0]
	for _, x := range cs {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// pinnedBuckets is how many buckets a pinned strategy hashes sources into.
const pinnedBuckets = 1024

// pinned sends every event of one source (stream, or correlation ID) to
// the same consumer: sources hash into buckets, each bucket belongs to one
// consumer, a new consumer takes over its share of buckets, and a leaving
// consumer's buckets go to whoever has the fewest.
type pinned struct {
	byCorrelation bool
	owner         [pinnedBuckets]*Consumer
	count         map[*Consumer]int // buckets owned
	order         []*Consumer
}

func newPinned(byCorrelation bool) *pinned {
	return &pinned{byCorrelation: byCorrelation, count: map[*Consumer]int{}}
}

func (s *pinned) added(c *Consumer) {
	s.order = append(s.order, c)
	s.count[c] = 0
	assigned := 0
	for _, n := range s.count {
		assigned += n
	}
	fair := (assigned + len(s.order) - 1) / len(s.order)
	for b, owner := range s.owner {
		if owner != nil && owner != c && s.count[owner] > fair {
			s.count[owner]--
			s.owner[b] = c
			s.count[c]++
		}
	}
}

func (s *pinned) removed(c *Consumer) {
	for b, owner := range s.owner {
		if owner == c {
			s.owner[b] = nil
		}
	}
	delete(s.count, c)
	s.order = without(s.order, c)
}

func (s *pinned) pick(m *message) (*Consumer, pushResult) {
	room := false
	for _, c := range s.order {
		if c.free() > 0 {
			room = true
			break
		}
	}
	if !room {
		return nil, pushNoRoom
	}
	b := s.bucket(m)
	c := s.owner[b]
	if c == nil {
		for _, x := range s.order {
			if c == nil || s.count[x] < s.count[c] {
				c = x
			}
		}
		s.owner[b] = c
		s.count[c]++
	}
	if c.free() == 0 {
		return nil, pushSkipped
	}
	return c, pushSent
}

func (s *pinned) bucket(m *message) int {
	h := fnv.New32a()
	h.Write([]byte(s.source(m)))
	return int(h.Sum32() % pinnedBuckets)
}

// source is what the message is pinned by: the correlation ID when asked
// and present, else the stream of the event (of the link's target when
// resolved; an unresolved link's data names it).
func (s *pinned) source(m *message) string {
	r := m.event
	if r == nil {
		r = m.link
	}
	if s.byCorrelation {
		if id := correlationID(r.CustomMetadata); id != "" {
			return id
		}
	}
	if r.Type == storage.TypeLink {
		if _, stream, ok := strings.Cut(string(r.Data), "@"); ok {
			return stream
		}
	}
	return r.Stream
}

// correlationID is the $correlationId string of JSON event metadata.
func correlationID(meta []byte) string {
	if len(meta) == 0 || !bytes.Contains(meta, []byte(`"$correlationId"`)) {
		return ""
	}
	var m struct {
		ID string `json:"$correlationId"`
	}
	if json.Unmarshal(meta, &m) != nil {
		return ""
	}
	return m.ID
}
