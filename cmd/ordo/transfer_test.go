package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-dev/ordo/commands"
	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
)

func readAllEvents(tb testing.TB, ctx context.Context, s *eventstore.Store) map[string][]eventstore.RecordedEvent {
	tb.Helper()
	out := map[string][]eventstore.RecordedEvent{}
	err := s.ReadAll(ctx, 0, eventstore.Filter{}, func(e eventstore.RecordedEvent) error {
		e.Position, e.Created = 0, time.Time{} // the store's own, never copied
		out[e.Stream] = append(out[e.Stream], e)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestExportImportMigrateRoundTrip(t *testing.T) {
	src := t.TempDir()
	populate(t, src, 40)
	ctx := testCtx(t)
	file := filepath.Join(t.TempDir(), "backup.jsonl")

	// An export cut off mid-line continues after its last complete line.
	if out, _, err := cli(ctx, "export", "--out", file, "--data", src); err != nil || !strings.Contains(out, "verified:") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	whole, _ := os.ReadFile(file)
	lines := bytes.Count(whole, []byte("\n"))
	cut := bytes.Index(whole[len(whole)/2:], []byte("\n")) + len(whole)/2 + 20 // mid-line
	if err := os.WriteFile(file, whole[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(ctx, "export", "--out", file, "--data", src)
	if err != nil || !strings.Contains(out, "verified:") {
		t.Fatalf("export resumed: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, whole) {
		t.Fatalf("the resumed export differs from a clean one (%d vs %d bytes)", len(again), len(whole))
	}

	// Import half, then all: the second run skips what is there.
	half := filepath.Join(t.TempDir(), "half.jsonl")
	firstHalf := whole[:bytes.Index(whole[len(whole)/2:], []byte("\n"))+len(whole)/2+1]
	if err := os.WriteFile(half, firstHalf, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if out, _, err := cli(ctx, "import", half, "--data", dst); err != nil {
		t.Fatalf("import of half: %v\n%s", err, out)
	}
	out, _, err = cli(ctx, "import", file, "--data", dst)
	wantSkipped := fmt.Sprintf("%d already present", bytes.Count(firstHalf, []byte("\n")))
	if err != nil || !strings.Contains(out, wantSkipped) || !strings.Contains(out, "verified:") {
		t.Fatalf("import after an interrupted one: %v, want %q\n%s", err, wantSkipped, out)
	}

	// Migrate to another server, twice: the second run appends nothing.
	target, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	out, _, err = cli(ctx, "migrate", "--data", src, "--to", target.URL())
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d appended", lines)) || !strings.Contains(out, "verified:") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	out, _, err = cli(ctx, "migrate", "--data", src, "--to", target.URL())
	if err != nil || !strings.Contains(out, "0 appended") {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}

	// Every store now holds the same streams, events, IDs, data and metadata.
	open := func(url string) *eventstore.Store {
		s, err := eventstore.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	embedded := func(dir string) map[string][]eventstore.RecordedEvent {
		s, err := eventstore.OpenEmbedded(ctx, eventstore.EmbeddedConfig{DataDir: filepath.Join(dir, "eventstore")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return readAllEvents(t, ctx, s)
	}
	want := embedded(src)
	if len(want) != 40 {
		t.Fatalf("source has %d streams, want 40", len(want))
	}
	for name, got := range map[string]map[string][]eventstore.RecordedEvent{"imported": embedded(dst), "migrated": readAllEvents(t, ctx, open(target.URL()))} {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("the %s store differs from the source", name)
		}
	}

	// A target that disagrees fails the verification.
	if _, err := open(target.URL()).Append(ctx, commands.StreamName(uuid.NewString()), eventstore.NoStream(),
		eventstore.EventData{ID: uuid.New(), Type: "Extra", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for stream := range want {
		if _, err := open(target.URL()).Append(ctx, stream, eventstore.Any(), eventstore.EventData{ID: uuid.New(), Type: "Extra", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		break
	}
	out, _, err = cli(ctx, "migrate", "--data", src, "--to", target.URL())
	if _, ok := err.(cliError); !ok || !strings.Contains(out, "VERIFICATION FAILED: 1 streams differ") {
		t.Fatalf("migrate onto a diverged target: %v, want a failed verification naming one stream\n%s", err, out)
	}
}
