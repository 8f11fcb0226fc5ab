package storage

import (
	"bytes"
	"context"
	"errors"
	"strconv"
)

// TypeLink is the type of a link event: its data is "<revision>@<stream>",
// a pointer to another stream's event (SystemEventTypes.LinkTo in
// EventStoreDB).
const TypeLink = "$>"

// ResolveLink returns the event a link record points to, as a read of that
// stream would show it. ok is false when r is not a link, its data is not
// "<revision>@<stream>", or the target is not readable (never written,
// deleted, hidden by $tb, $maxCount or $maxAge): EventStoreDB then sends
// the link alone. The error is set only when the store itself failed.
func (s *Store) ResolveLink(ctx context.Context, r *Record) (target Record, ok bool, err error) {
	if r.Type != TypeLink {
		return Record{}, false, nil
	}
	rev, stream, valid := parseLink(r.Data)
	if !valid {
		return Record{}, false, nil
	}
	err = s.ReadStream(ctx, stream, rev, false, Forwards, 1, func(t Record) error {
		// Forwards from rev, the first visible event may come later
		// (rev itself hidden or truncated): only rev itself resolves.
		if t.Revision == rev {
			target, ok = t, true
		}
		return errStop
	})
	switch {
	case err == nil, isStop(err), errors.Is(err, ErrStreamNotFound), errors.Is(err, ErrStreamDeleted):
		return target, ok, nil
	default:
		return Record{}, false, err
	}
}

// parseLink reads "<revision>@<stream>".
func parseLink(data []byte) (Revision, string, bool) {
	at := bytes.IndexByte(data, '@')
	if at <= 0 || at == len(data)-1 {
		return 0, "", false
	}
	n, err := strconv.ParseUint(string(data[:at]), 10, 63)
	if err != nil {
		return 0, "", false
	}
	return Revision(n), string(data[at+1:]), true
}
