// Package persistent implements EventStoreDB's persistent subscriptions on
// the embedded store: server-side subscription groups whose competing
// consumers acknowledge each event, to a stream or to $all (with a
// filter), with retries after a nack or a message timeout, parked events,
// and checkpoints, so that a group resumes after a restart (or a crash)
// without losing an unacknowledged event.
//
// Definitions, checkpoints and parked events are events in the store, in
// EventStoreDB's own streams and formats, written with the store's durable
// appends. The gRPC mapping is in the esdbserver package.
package persistent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-dev/ordo/eventstore/esdbserver/storage"
)

// Errors the manager returns; callers branch on them with errors.Is.
var (
	ErrExists         = errors.New("subscription group already exists")
	ErrNotFound       = errors.New("subscription group does not exist")
	ErrMaxSubscribers = errors.New("maximum subscribers reached")
)

// Options tune a Manager. The zero value is usable.
type Options struct {
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil is time.Now
	// Tick is how often message timeouts and time-based checkpoints are
	// checked (default 1 s, as in EventStoreDB).
	Tick time.Duration
}

// Manager runs the persistent subscription groups of one store.
type Manager struct {
	store *storage.Store
	log   *slog.Logger
	now   func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	ticker sync.WaitGroup
	ids    atomic.Uint64

	mu      sync.Mutex
	groups  map[string]*group // by key
	entries []configEntry     // the saved definitions, in creation order
	sources map[string]bool   // streams that had groups (List answers NotFound for others)
	closed  bool
}

// Start loads the saved groups and starts them.
func Start(ctx context.Context, store *storage.Store, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &Manager{store: store, log: opts.Logger, now: opts.Now, ctx: mctx, cancel: cancel,
		groups: map[string]*group{}, sources: map[string]bool{}}
	if err := m.load(ctx); err != nil {
		cancel()
		return nil, err
	}
	m.ticker.Add(1)
	go m.tick(opts.Tick)
	return m, nil
}

// load starts every saved group; one that cannot be read is logged and
// left out, as EventStoreDB does.
func (m *Manager) load(ctx context.Context) error {
	doc, err := loadConfig(ctx, m.store)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = nil
	for _, e := range doc.Entries {
		spec, err := e.spec()
		if err == nil {
			err = spec.validate(storage.Position(1<<63 - 1))
		}
		k := key(e.Stream, e.Group)
		if err != nil {
			m.log.Error("persistent subscription definition left out", "subscription", k, "err", err)
			continue
		}
		if _, dup := m.groups[k]; dup {
			m.log.Warn("duplicate persistent subscription definition ignored", "subscription", k)
			continue
		}
		m.entries = append(m.entries, e)
		g := newGroup(m, spec, e)
		m.groups[k] = g
		m.sources[e.Stream] = true
		g.start()
	}
	return nil
}

// Close stops every group (consumers are dropped) and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	groups := m.groupList()
	m.mu.Unlock()
	for _, g := range groups {
		g.stop(fmt.Errorf("%w: the server is shutting down", ErrDropped))
	}
	m.cancel()
	m.ticker.Wait()
}

func (m *Manager) groupList() []*group {
	out := make([]*group, 0, len(m.groups))
	for _, g := range m.groups {
		out = append(out, g)
	}
	return out
}

func (m *Manager) tick(every time.Duration) {
	defer m.ticker.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.mu.Lock()
			groups := m.groupList()
			m.mu.Unlock()
			now := m.now()
			for _, g := range groups {
				g.tick(now)
			}
		case <-m.ctx.Done():
			return
		}
	}
}

// Create defines a new group and starts it. Errors: ErrExists,
// *InvalidError, or the store's error saving the definition.
func (m *Manager) Create(ctx context.Context, spec Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	if err := spec.validate(m.store.Head()); err != nil {
		return err
	}
	k := key(spec.Source.Stream, spec.Group)
	if _, ok := m.groups[k]; ok {
		return fmt.Errorf("%w: group %q on %s", ErrExists, spec.Group, spec.Source.Stream)
	}
	entry, err := m.newEntry(ctx, spec)
	if err != nil {
		return err
	}
	if err := m.save(ctx, append(slices.Clone(m.entries), entry)); err != nil {
		return err
	}
	m.entries = append(m.entries, entry)
	g := newGroup(m, spec, entry)
	m.groups[k] = g
	m.sources[spec.Source.Stream] = true
	g.start()
	return nil
}

// Update replaces a group's settings (an $all group keeps its filter): its
// consumers are dropped and it starts again from its checkpoint (or, with
// none, from the new start). Errors: ErrNotFound, *InvalidError, or the
// store's error saving the definition.
func (m *Manager) Update(ctx context.Context, spec Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	k := key(spec.Source.Stream, spec.Group)
	old, ok := m.groups[k]
	if !ok {
		return fmt.Errorf("%w: group %q on %s", ErrNotFound, spec.Group, spec.Source.Stream)
	}
	spec.Source.Filter = old.spec.Source.Filter
	if err := spec.validate(m.store.Head()); err != nil {
		return err
	}
	entry, err := m.newEntry(ctx, spec)
	if err != nil {
		return err
	}
	entries := slices.Clone(m.entries)
	for i := range entries {
		if key(entries[i].Stream, entries[i].Group) == k {
			entries[i] = entry
		}
	}
	old.stop(fmt.Errorf("%w: the group was updated", ErrDropped))
	if err := m.save(ctx, entries); err != nil {
		// The definition on disk is still the old one: run it again.
		g := newGroup(m, old.spec, old.entry)
		m.groups[k] = g
		g.start()
		return err
	}
	m.entries = entries
	g := newGroup(m, spec, entry)
	m.groups[k] = g
	g.start()
	return nil
}

// Delete removes a group, its checkpoint and its parked events; its
// consumers are dropped. Errors: ErrNotFound, or the store's error saving
// the definitions.
func (m *Manager) Delete(ctx context.Context, stream, groupName string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.usable(); err != nil {
		return err
	}
	k := key(stream, groupName)
	g, ok := m.groups[k]
	if !ok {
		return fmt.Errorf("%w: group %q on %s", ErrNotFound, groupName, stream)
	}
	entries := slices.DeleteFunc(slices.Clone(m.entries), func(e configEntry) bool { return key(e.Stream, e.Group) == k })
	if err := m.save(ctx, entries); err != nil {
		return err
	}
	m.entries = entries
	delete(m.groups, k)
	g.stop(fmt.Errorf("%w: the group was deleted", ErrDropped))
	for _, s := range []string{g.checkpointStream, g.parkedStream} {
		if _, err := m.store.Delete(ctx, s, storage.Expected{Kind: storage.ExpectAny}); err != nil {
			var wev *storage.WrongExpectedVersionError
			if !errors.As(err, &wev) { // never written
				m.log.Warn("stream of a deleted persistent subscription not deleted", "stream", s, "err", err)
			}
		}
	}
	return nil
}

// Connect adds a consumer to a group; slots is how many events it may
// hold unacknowledged (the client's buffer size). Errors: ErrNotFound,
// ErrMaxSubscribers.
func (m *Manager) Connect(stream, groupName string, slots int, connName, from string) (*Consumer, error) {
	m.mu.Lock()
	g, ok := m.groups[key(stream, groupName)]
	closed := m.closed
	m.mu.Unlock()
	if !ok || closed {
		return nil, fmt.Errorf("%w: group %q on %s", ErrNotFound, groupName, stream)
	}
	c := newConsumer(g, m.ids.Add(1), connName, from, "anonymous", slots)
	if err := g.join(c); err != nil {
		return nil, err
	}
	return c, nil
}

// ReplayParked sends a group's parked events (those below stopAt in the
// parked stream; all when nil) to its consumers again. Errors:
// ErrNotFound, *InvalidError for a negative stopAt.
func (m *Manager) ReplayParked(stream, groupName string, stopAt *int64) error {
	if stopAt != nil && *stopAt < 0 {
		return invalid("Cannot stop replaying parked message at a negative version.")
	}
	m.mu.Lock()
	g, ok := m.groups[key(stream, groupName)]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: group %q on %s", ErrNotFound, groupName, stream)
	}
	g.startReplay(stopAt)
	return nil
}

// Restart stops every group and starts them again from their saved
// definitions and checkpoints (EventStoreDB's RestartSubsystem).
func (m *Manager) Restart(ctx context.Context) error {
	m.mu.Lock()
	if err := m.usable(); err != nil {
		m.mu.Unlock()
		return err
	}
	groups := m.groupList()
	m.groups = map[string]*group{}
	m.mu.Unlock()
	for _, g := range groups {
		g.stop(fmt.Errorf("%w: the persistent subscription subsystem restarted", ErrDropped))
	}
	return m.load(ctx)
}

// Info describes one group. Errors: ErrNotFound.
func (m *Manager) Info(stream, groupName string) (Info, error) {
	m.mu.Lock()
	g, ok := m.groups[key(stream, groupName)]
	m.mu.Unlock()
	if !ok {
		return Info{}, fmt.Errorf("%w: group %q on %s", ErrNotFound, groupName, stream)
	}
	return g.info(), nil
}

// List describes the groups of one stream ($all included), or all groups
// when stream is empty. Errors: ErrNotFound for a stream that never had a
// group (as EventStoreDB answers).
func (m *Manager) List(stream string) ([]Info, error) {
	m.mu.Lock()
	groups := m.groupList()
	known := stream == "" || m.sources[stream]
	m.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("%w: no subscription groups on %s", ErrNotFound, stream)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].key < groups[j].key })
	var out []Info
	for _, g := range groups {
		if stream == "" || g.spec.Source.Stream == stream {
			out = append(out, g.info())
		}
	}
	return out, nil
}

func (m *Manager) usable() error {
	if m.closed {
		return storage.ErrClosed
	}
	return nil
}

// newEntry is spec's saved definition; a group from the end records where
// the end is now.
func (m *Manager) newEntry(ctx context.Context, spec Spec) (configEntry, error) {
	e := newEntry(spec)
	if !spec.Start.End {
		return e, nil
	}
	if spec.Source.IsAll() {
		head := uint64(m.store.Head())
		e.StartAfter = &head
		return e, nil
	}
	found := false
	err := m.store.ReadStream(ctx, spec.Source.Stream, 0, true, storage.Backwards, 1, func(r storage.Record) error {
		rev := uint64(r.Revision)
		e.StartAfter, found = &rev, true
		return nil
	})
	switch {
	case errors.Is(err, storage.ErrStreamNotFound), errors.Is(err, storage.ErrStreamDeleted), err == nil && !found:
		return e, nil // nothing to skip: from the first event written
	}
	return e, err
}

func (m *Manager) save(ctx context.Context, entries []configEntry) error {
	return saveConfig(context.WithoutCancel(ctx), m.store, configDoc{Entries: entries}, m.now())
}
