package commands

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/jsonwire"
)

// aggregate is an order folded from its stream, plus what is needed to give a
// repeated command its first outcome: the position, type, resulting state
// and command fingerprint of every event by revision. Orders have tens of
// events, so keeping these per revision costs little.
type aggregate struct {
	order        *domain.Order
	positions    []uint64
	types        []string
	states       []domain.State
	fingerprints []string
}

func newAggregate(orderID string) *aggregate {
	return &aggregate{order: domain.NewOrder(orderID)}
}

// apply folds one stored event.
func (a *aggregate) apply(se StoredEvent) error {
	if want := a.order.Revision() + 1; se.Revision != want {
		return fmt.Errorf("event at revision %d follows revision %d: the stream has a gap", se.Revision, want-1)
	}
	e, err := jsonwire.DecodeEvent(se.Type, se.Data, se.Metadata)
	if err != nil {
		return fmt.Errorf("decode %s at revision %d: %w", se.Type, se.Revision, err)
	}
	if err := a.order.Apply(e); err != nil {
		return fmt.Errorf("fold %s at revision %d: %w", se.Type, se.Revision, err)
	}
	a.positions = append(a.positions, se.Position)
	a.types = append(a.types, se.Type)
	a.states = append(a.states, a.order.State())
	a.fingerprints = append(a.fingerprints, a.fingerprintOf(e.Meta.CommandFingerprint))
	return nil
}

// fingerprintOf returns fp without holding on to the metadata it was
// sliced from; the events of one command share one copy.
func (a *aggregate) fingerprintOf(fp string) string {
	if n := len(a.fingerprints); n > 0 && a.fingerprints[n-1] == fp {
		return a.fingerprints[n-1]
	}
	return strings.Clone(fp)
}

// record folds the events a command just appended; app describes the last.
func (a *aggregate) record(events []domain.Event, encoded []NewEvent, app Appended) error {
	for i, e := range events {
		if err := a.order.Apply(e); err != nil {
			return fmt.Errorf("fold appended %s: %w", e.Type, err)
		}
		// Only the last event's position is reported by the store; earlier
		// events of the same append sit just before it, and only the last
		// one's position is ever handed out as an outcome.
		a.positions = append(a.positions, app.Position)
		a.types = append(a.types, encoded[i].Type)
		a.states = append(a.states, a.order.State())
		a.fingerprints = append(a.fingerprints, e.Meta.CommandFingerprint)
	}
	return nil
}

// outcome rebuilds the result a command had when it was first applied,
// with the fingerprint it was applied with ("" when none was recorded).
func (a *aggregate) outcome(commandID string) (Result, string, bool) {
	first, last, ok := a.order.CommandOutcome(commandID)
	if !ok || first < 0 || last >= int64(len(a.types)) || first > last {
		return Result{}, "", false
	}
	return Result{
		Revision:  last,
		Position:  a.positions[last],
		Events:    append([]string(nil), a.types[first:last+1]...),
		State:     a.states[last],
		Duplicate: true,
	}, a.fingerprints[first], true
}

// catchUp reads the events after the aggregate's revision. A stream that
// does not exist leaves an empty aggregate as it is.
func (a *aggregate) catchUp(ctx context.Context, store EventStore, orderID string) error {
	err := store.ReadStream(ctx, StreamName(orderID), a.order.Revision()+1, a.apply)
	if errors.Is(err, ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load order %s: %w", orderID, err)
	}
	return nil
}

// aggregateCache keeps recently used aggregates so hot orders are neither
// replayed from scratch nor even read before an append: the append's expected
// revision detects a stale entry, and only then is the stream read, from the
// cached revision on.
//
// An order is held by one goroutine at a time: acquire waits while another
// holds it and release hands it back. Commands for one order arrive on one
// worker lane, but the saga executes commands too. Without the hold, the
// second of two concurrent commands would find no cached entry, read the
// whole stream, and then usually lose the append to the first and read
// again; waiting for the first costs neither read.
type aggregateCache struct {
	mu    sync.Mutex
	max   int
	lru   *list.List // of *cacheEntry, most recent first; held orders are not in it
	index map[string]*list.Element
	held  map[string]*holder
}

type cacheEntry struct {
	id  string
	agg *aggregate
}

// holder marks a held order; wake is made by the first waiter and closed
// on release.
type holder struct {
	wake chan struct{}
}

func newAggregateCache(max int) *aggregateCache {
	return &aggregateCache{max: max, lru: list.New(), index: make(map[string]*list.Element), held: make(map[string]*holder)}
}

// acquire holds the order id, waiting while another goroutine holds it, and
// returns its cached aggregate (nil if none). Every successful acquire must
// be followed by one release.
func (c *aggregateCache) acquire(ctx context.Context, id string) (*aggregate, error) {
	for {
		c.mu.Lock()
		h, busy := c.held[id]
		if !busy {
			c.held[id] = &holder{}
			agg := c.takeLocked(id)
			c.mu.Unlock()
			return agg, nil
		}
		if h.wake == nil {
			h.wake = make(chan struct{})
		}
		wake := h.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for order %s: %w", id, ctx.Err())
		}
	}
}

// release lets the order go, keeping agg in the cache (nil: keep nothing,
// the next command reads the stream).
func (c *aggregateCache) release(id string, agg *aggregate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.held[id]; h != nil {
		delete(c.held, id)
		if h.wake != nil {
			close(h.wake)
		}
	}
	if agg == nil {
		return
	}
	c.index[id] = c.lru.PushFront(&cacheEntry{id: id, agg: agg})
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.index, last.Value.(*cacheEntry).id)
	}
}

func (c *aggregateCache) takeLocked(id string) *aggregate {
	el, ok := c.index[id]
	if !ok {
		return nil
	}
	c.lru.Remove(el)
	delete(c.index, id)
	return el.Value.(*cacheEntry).agg
}
