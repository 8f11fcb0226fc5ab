package datadir

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestAcquireRefusesASecondHolder(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrInUse) {
		t.Fatalf("second Acquire: got %v, want an *InUseError", err)
	}
	want := "data directory " + dir + " is in use by pid " + strconv.Itoa(os.Getpid())
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Unlock: %v", err)
	}
	again.Unlock()
}

func TestAcquireNeedsTheDirectory(t *testing.T) {
	_, err := Acquire(t.TempDir() + "/missing")
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("got %v, want an error naming the missing directory", err)
	}
}

func TestUnlockIsIdempotent(t *testing.T) {
	l, err := Acquire(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
}
