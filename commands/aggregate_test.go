package commands

import (
	"context"
	"errors"
	"testing"
)

// TestAggregateCacheHoldsOneOrderAtATime: a second acquire of a held order
// waits until the release, then gets what the release kept; a waiter whose
// context ends gives up with the context's error; other orders never wait.
func TestAggregateCacheHoldsOneOrderAtATime(t *testing.T) {
	c := newAggregateCache(10)
	ctx := context.Background()
	if agg, err := c.acquire(ctx, "a"); agg != nil || err != nil {
		t.Fatalf("first acquire of a: %v, %v; want no aggregate, no error", agg, err)
	}
	if _, err := c.acquire(ctx, "b"); err != nil {
		t.Fatalf("acquire of b while a is held: %v", err)
	}
	c.release("b", nil)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.acquire(cancelled, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire of a held order with an ended context: %v, want context.Canceled", err)
	}

	kept := newAggregate("a")
	got := make(chan *aggregate)
	go func() {
		agg, err := c.acquire(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		got <- agg
	}()
	c.release("a", kept)
	if agg := <-got; agg != kept {
		t.Fatalf("the waiter got %p, want the released aggregate %p", agg, kept)
	}
	c.release("a", nil)
	if agg, _ := c.acquire(ctx, "a"); agg != nil {
		t.Fatalf("after a release of nothing the cache still had %p", agg)
	}
	c.release("a", nil)
}

// TestAggregateCacheEvictsOnlyIdleOrders: the cache keeps at most max
// released orders, least recently released out first.
func TestAggregateCacheEvictsOnlyIdleOrders(t *testing.T) {
	c := newAggregateCache(2)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.acquire(ctx, id); err != nil {
			t.Fatal(err)
		}
		c.release(id, newAggregate(id))
	}
	for id, want := range map[string]bool{"a": false, "b": true, "c": true} {
		agg, _ := c.acquire(ctx, id)
		if (agg != nil) != want {
			t.Errorf("order %s cached: %t, want %t", id, agg != nil, want)
		}
		c.release(id, agg)
	}
}
