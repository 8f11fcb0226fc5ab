package projections

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxEcho bounds how much of a bad value an error message repeats: enough
// to recognise it, never a 100 KB parameter sent back whole.
const maxEcho = 64

// quote quotes s for an error message, cut after maxEcho bytes.
func quote(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// checkParams refuses query parameters that endpoint does not take,
// parameters given twice, and empty values: each would otherwise be
// ignored, and the caller would get an answer to a question it did not
// ask (an unfiltered list for a misspelt filter, the default page size
// for limit=).
func checkParams(v url.Values, endpoint string, allowed ...string) error {
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names) // the same answer for the same request
	for _, name := range names {
		vals := v[name]
		switch {
		case !slices.Contains(allowed, name):
			takes := "no parameters"
			if len(allowed) > 0 {
				takes = strings.Join(allowed, ", ")
			}
			return &InvalidQueryError{truncate(name), fmt.Sprintf("%s takes %s; %s is not one of them", endpoint, takes, quote(name))}
		case len(vals) > 1:
			return &InvalidQueryError{name, fmt.Sprintf("is given %d times; give it once", len(vals))}
		case vals[0] == "":
			return &InvalidQueryError{name, "is empty; give it a value, or leave it out"}
		}
	}
	return nil
}

// truncate cuts s after maxEcho bytes, for a field name in an error.
func truncate(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
