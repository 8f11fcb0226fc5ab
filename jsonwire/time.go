package jsonwire

import "time"

// parseTime reads a time as encoding/json does (time.Time's
// UnmarshalJSON), but only in the canonical form time.RFC3339Nano writes:
// time.Parse alone is more lenient than encoding/json (a one-digit hour,
// say), so anything it reads that Format does not write back unchanged is
// refused.
func parseTime(b []byte) (time.Time, bool) {
	if t, ok := parseCanonicalUTC(b); ok {
		return t, true
	}
	s := string(b)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Format(time.RFC3339Nano) != s {
		return time.Time{}, false
	}
	return t, true
}

// parseCanonicalUTC reads a time in the form time.RFC3339Nano writes for
// UTC: 2006-01-02T15:04:05[.fraction]Z, the fraction 1-9 digits without
// trailing zeros. It checks the ranges time.Parse checks (month, day of
// that month, hour, minute, second). Anything else is false, and the caller
// asks time.Parse; this is only the cheaper way to the same result, without
// the Format round trip that proves the form canonical.
func parseCanonicalUTC(s []byte) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		v := 0
		for i := from; i < to; i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			v = v*10 + int(s[i]-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	switch frac := s[19 : len(s)-1]; {
	case len(frac) == 0:
	case len(frac) < 2 || len(frac) > 10 || frac[0] != '.' || frac[len(frac)-1] == '0':
		return time.Time{}, false
	default:
		f, ok := num(20, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			f *= 10
		}
		nsec = f
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// daysIn is the number of days of month m in year.
func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
