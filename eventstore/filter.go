package eventstore

import (
	"fmt"
	"regexp"
	"strings"
)

// Filter selects events by stream name or event type; at most one kind.
// Prefixes match with strings.HasPrefix; regexes (Go RE2 syntax) match
// anywhere in the name unless anchored, as EventStoreDB's do.
type Filter struct {
	StreamPrefixes    []string
	EventTypePrefixes []string
	StreamRegex       string
	EventTypeRegex    string
}

// matcher is the filter as a predicate, for reads, which apply it in this
// process (the official client's $all reads carry no filter).
func (f Filter) matcher() (func(stream, eventType string) bool, error) {
	var re *regexp.Regexp
	if pat := f.StreamRegex + f.EventTypeRegex; pat != "" {
		var err error
		if re, err = regexp.Compile(pat); err != nil {
			return nil, fmt.Errorf("filter regex %q: %w", pat, err)
		}
	}
	// It takes the two names rather than the event: an event passed by
	// pointer to a func value escapes, one heap copy per event read.
	return func(stream, eventType string) bool {
		switch {
		case len(f.StreamPrefixes) > 0:
			return hasPrefix(stream, f.StreamPrefixes)
		case f.StreamRegex != "":
			return re.MatchString(stream)
		case len(f.EventTypePrefixes) > 0:
			return hasPrefix(eventType, f.EventTypePrefixes)
		case f.EventTypeRegex != "":
			return re.MatchString(eventType)
		}
		return true
	}, nil
}

// isZero reports whether the filter selects everything.
func (f Filter) isZero() bool {
	return len(f.StreamPrefixes) == 0 && len(f.EventTypePrefixes) == 0 && f.StreamRegex == "" && f.EventTypeRegex == ""
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
