package esdbserver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventually"
	"github.com/ordo-dev/ordo/smalldisk"
)

// TestDiskFullAnswersResourceExhausted: an append refused because the disk
// is full reaches the official client as a transient failure (the
// adapter's ErrUnavailable, "disk full" in the message), and appends
// through the same connection succeed again once space is freed.
func TestDiskFullAnswersResourceExhausted(t *testing.T) {
	disk := smalldisk.Mount(t, 48<<20)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := esdbserver.Start(ctx, esdbserver.Config{DataDir: filepath.Join(disk, "es"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	store, err := eventstore.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	appendOne := func(n int) error {
		_, err := store.Append(ctx, fmt.Sprint("s-", n), eventstore.Any(), eventstore.EventData{Type: "T", Data: []byte(`{}`)})
		return err
	}
	if err := appendOne(0); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(disk, "filler")
	smalldisk.LeaveFree(t, filler, 10<<20)
	var refused error
	for n := 1; refused == nil; n++ {
		if refused = appendOne(n); refused == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !errors.Is(refused, eventstore.ErrUnavailable) || !strings.Contains(refused.Error(), "disk full") {
		t.Fatalf("append on a full disk: got %v, want ErrUnavailable saying the disk is full", refused)
	}
	os.Remove(filler)
	n := 1000
	eventually.NoError(t, 10*time.Second, "appends to resume after space was freed", func() error {
		n++
		return appendOne(n)
	})
}
