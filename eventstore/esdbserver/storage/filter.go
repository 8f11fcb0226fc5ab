package storage

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Limits on an $all filter, so that no single request can make the server
// spend unbounded memory or time. Go's regexp engine gives every match
// thread a slot array as large as the pattern's capture groups, so a
// 100 KiB pattern of groups made one request cost gigabytes; capture groups
// are therefore compiled as plain groups (a filter only asks whether a
// name matches), and the pattern and its compiled program are bounded.
// A filter beyond a limit is refused with ErrInvalidRequest.
const (
	// MaxFilterRegexLength is the longest regular expression accepted, in bytes.
	MaxFilterRegexLength = 4 << 10
	// MaxFilterRegexProgram is the largest compiled regular expression
	// accepted, in RE2 instructions (about one per literal character; a
	// counted repetition x{n} costs n times x).
	MaxFilterRegexProgram = 10_000
	// MaxFilterPrefixes is the most prefixes a filter may list.
	MaxFilterPrefixes = 1_000
	// MaxFilterPrefixBytes is the most bytes all prefixes may add up to.
	MaxFilterPrefixBytes = 64 << 10
)

// compile turns a filter into a predicate. An $all filter also leaves out
// the store's internal bookkeeping streams, as EventStoreDB does: the epoch
// stream and the checkpoint and parked-message streams of persistent
// subscriptions to $all (which would otherwise feed themselves).
func (f Filter) compile() (func(stream, eventType string) bool, error) {
	if err := checkPrefixes(f.StreamPrefixes); err != nil {
		return nil, err
	}
	if err := checkPrefixes(f.TypePrefixes); err != nil {
		return nil, err
	}
	var re *regexp.Regexp
	if pat := f.StreamRegex + f.TypeRegex; pat != "" {
		var err error
		if re, err = CompileFilterRegex(pat); err != nil {
			return nil, err
		}
	}
	filtered := len(f.StreamPrefixes) > 0 || len(f.TypePrefixes) > 0 || re != nil
	// The matcher takes the two names rather than the record: a record
	// passed by pointer to a func value escapes, one heap copy per record read.
	return func(stream, eventType string) bool {
		if !filtered {
			return true
		}
		if IsAllBookkeeping(stream) {
			return false
		}
		switch {
		case len(f.StreamPrefixes) > 0:
			return hasAnyPrefix(stream, f.StreamPrefixes)
		case len(f.TypePrefixes) > 0:
			return hasAnyPrefix(eventType, f.TypePrefixes)
		case f.StreamRegex != "":
			return re.MatchString(stream)
		default:
			return re.MatchString(eventType)
		}
	}, nil
}

// Validate reports whether the filter can be used: its regular expression
// compiles within the limits above and its prefixes stay within theirs.
// Errors wrap ErrInvalidRequest.
func (f Filter) Validate() error {
	_, err := f.compile()
	return err
}

// IsAllBookkeeping reports whether stream holds the store's own
// bookkeeping that filtered $all reads leave out (EventStoreDB's
// DefaultAllFilter): the epoch stream, and the checkpoints and parked
// messages of persistent subscriptions to $all.
func IsAllBookkeeping(stream string) bool {
	if strings.HasPrefix(stream, "$epoch-information") {
		return true
	}
	const psAll = "$persistentsubscription-$all::"
	return strings.HasPrefix(stream, psAll) &&
		(strings.HasSuffix(stream, "-checkpoint") || strings.HasSuffix(stream, "-parked"))
}

// CompileFilterRegex compiles a filter's regular expression (Go RE2
// syntax, unanchored) within the limits above, with capture groups
// compiled as plain groups. Errors wrap ErrInvalidRequest and say which
// limit was exceeded.
func CompileFilterRegex(pat string) (*regexp.Regexp, error) {
	if len(pat) > MaxFilterRegexLength {
		return nil, fmt.Errorf("%w: filter regex of %d bytes is longer than the limit of %d bytes; use prefixes or a shorter pattern",
			ErrInvalidRequest, len(pat), MaxFilterRegexLength)
	}
	tree, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("%w: filter regex %q: %v", ErrInvalidRequest, pat, err)
	}
	tree = withoutCaptures(tree)
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		return nil, fmt.Errorf("%w: filter regex %q: %v", ErrInvalidRequest, pat, err)
	}
	if n := len(prog.Inst); n > MaxFilterRegexProgram {
		return nil, fmt.Errorf("%w: filter regex compiles to %d instructions, more than the limit of %d (large counted repetitions x{n} multiply); simplify the pattern",
			ErrInvalidRequest, n, MaxFilterRegexProgram)
	}
	re, err := regexp.Compile(tree.String())
	if err != nil {
		return nil, fmt.Errorf("%w: filter regex %q: %v", ErrInvalidRequest, pat, err)
	}
	return re, nil
}

// withoutCaptures replaces every capture group by its content.
func withoutCaptures(re *syntax.Regexp) *syntax.Regexp {
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	for i, sub := range re.Sub {
		re.Sub[i] = withoutCaptures(sub)
	}
	return re
}

func checkPrefixes(prefixes []string) error {
	if len(prefixes) > MaxFilterPrefixes {
		return fmt.Errorf("%w: filter lists %d prefixes, more than the limit of %d", ErrInvalidRequest, len(prefixes), MaxFilterPrefixes)
	}
	n := 0
	for _, p := range prefixes {
		n += len(p)
	}
	if n > MaxFilterPrefixBytes {
		return fmt.Errorf("%w: filter prefixes add up to %d bytes, more than the limit of %d", ErrInvalidRequest, n, MaxFilterPrefixBytes)
	}
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
