package serve

import (
	"context"

	"github.com/ordo-dev/ordo/commands/audit"
	"github.com/ordo-dev/ordo/eventstore"
)

// AuditStore gives the audit (package commands/audit: ordo history, state
// and verify) the reads it declares, audit.StreamReader and audit.Scanner.
type AuditStore struct{ Store *eventstore.Store }

var (
	_ audit.StreamReader = AuditStore{}
	_ audit.Scanner      = AuditStore{}
)

// ReadStream implements audit.StreamReader.
func (a AuditStore) ReadStream(ctx context.Context, stream string, from uint64, fn func(audit.Event) error) error {
	var fnErr error
	err := a.Store.ReadStream(ctx, stream, from, func(e eventstore.RecordedEvent) error {
		fnErr = fn(auditEvent(e))
		return fnErr
	})
	if err != nil && err == fnErr {
		return err
	}
	return commandError(err)
}

// ScanAll implements audit.Scanner with the store's concurrent scan.
func (a AuditStore) ScanAll(ctx context.Context, from uint64, prefixes []string, fn func(audit.Event) error) error {
	return a.Store.ScanAll(ctx, from, eventstore.Filter{StreamPrefixes: prefixes}, func(e eventstore.RecordedEvent) error {
		return fn(auditEvent(e))
	})
}

func auditEvent(e eventstore.RecordedEvent) audit.Event {
	return audit.Event{Stream: e.Stream, Revision: e.Revision, Position: e.Position, Type: e.Type, Data: e.Data, Metadata: e.Metadata, Created: e.Created}
}
