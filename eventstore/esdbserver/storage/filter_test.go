package storage

import (
	"errors"
	"strings"
	"testing"
)

// TestFilterLimits: filters within the documented limits compile, those
// beyond them are refused as invalid requests, and a pattern's capture
// groups do not change what it matches.
func TestFilterLimits(t *testing.T) {
	// A realistic large pattern: an alternation of event types filling
	// most of the length limit must fit the program limit too.
	var types []string
	for i := 0; len(strings.Join(types, "|")) < MaxFilterRegexLength-64; i++ {
		types = append(types, "OrderEventType"+strings.Repeat("x", i%7)+string(rune('A'+i%26)))
	}
	alternation := "^(" + strings.Join(types, "|") + ")$"
	many := make([]string, MaxFilterPrefixes+1)
	for i := range many {
		many[i] = "p"
	}
	tests := []struct {
		name    string
		f       Filter
		wantErr string // "" compiles
	}{
		{"alternation near the length limit", Filter{TypeRegex: alternation}, ""},
		{"capture groups", Filter{StreamRegex: `^(order|sku)-(\d+)$`}, ""},
		{"100 KiB of groups", Filter{StreamRegex: strings.Repeat("(a?)", 25<<10)}, "longer than the limit"},
		{"one byte over the length limit", Filter{StreamRegex: strings.Repeat("a", MaxFilterRegexLength+1)}, "longer than the limit"},
		{"short pattern, huge program", Filter{StreamRegex: strings.Repeat("[a-z]{1000}", 11)}, "instructions, more than the limit"},
		{"invalid syntax", Filter{StreamRegex: "(["}, "missing closing"},
		{"too many prefixes", Filter{StreamPrefixes: many}, "prefixes, more than the limit"},
		{"prefixes too long", Filter{TypePrefixes: []string{strings.Repeat("x", MaxFilterPrefixBytes+1)}}, "bytes, more than the limit"},
	}
	for _, tt := range tests {
		_, err := tt.f.compile()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (!errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: got %v, want an invalid request saying %q", tt.name, err, tt.wantErr)
		}
	}

	match, err := Filter{StreamRegex: `^(order|sku)-(\d+)$`}.compile()
	if err != nil {
		t.Fatal(err)
	}
	for stream, want := range map[string]bool{"order-12": true, "sku-7": true, "order-x": false, "xorder-1": false,
		"$persistentsubscription-$all::g-checkpoint": false} {
		if got := match(stream, ""); got != want {
			t.Errorf("stream %q: match %v, want %v", stream, got, want)
		}
	}
	// Bookkeeping of persistent subscriptions to $all never passes a filter.
	all, _ := Filter{StreamPrefixes: []string{"$"}}.compile()
	for stream, want := range map[string]bool{"$persistentsubscription-$all::g-checkpoint": false,
		"$persistentsubscription-$all::g-parked": false, "$epoch-information": false,
		"$persistentsubscription-orders::g-checkpoint": true, "$$order-1": true} {
		if got := all(stream, ""); got != want {
			t.Errorf("stream %q with prefix $: match %v, want %v", stream, got, want)
		}
	}
}
