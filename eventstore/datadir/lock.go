// Package datadir guards Ordo's data directories: one process at a time
// opens a directory's files. Every command that opens a data directory
// itself (ordo serve, ordo eventstore serve, and the replay CLI when no
// service runs on it) takes its lock first, so a second opener fails at once
// with the holder's process ID instead of corrupting live files.
package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file inside a locked directory.
const LockFile = "ordo.lock"

// ErrInUse: another process holds the directory's lock.
var ErrInUse = errors.New("data directory in use")

// InUseError names the directory and the process holding its lock.
type InUseError struct {
	Dir string
	PID int // 0 when the holder has not written its process ID yet
}

func (e *InUseError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("data directory %s is in use by another process", e.Dir)
	}
	return fmt.Sprintf("data directory %s is in use by pid %d", e.Dir, e.PID)
}

// Is makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Lock is a held directory lock; Unlock releases it. The operating system
// releases it too when the process ends, however it ends, so a crash never
// leaves a directory locked.
type Lock struct {
	f   *os.File
	dir string
}

// Acquire locks dir, which must exist, without waiting: when another
// process (or another opener in this process) holds it, the error is an
// *InUseError. The lock file keeps the holder's process ID for that message.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// flock, not fcntl: its locks belong to the open file, so a second
	// opener inside the same process is refused as well.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &InUseError{Dir: dir, PID: Holder(dir)}
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// Without the process ID (a full disk) the lock still holds; others
	// then read "another process".
	_ = writePID(f)
	return &Lock{f: f, dir: dir}, nil
}

// writePID overwrites the file with this process's ID in place: a file
// that already held an ID needs no new disk block, even on a full disk.
func writePID(f *os.File) error {
	b := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(b)))
}

// Holder is the process ID recorded in dir's lock file, 0 when unknown.
// It does not say whether that process still holds the lock.
func Holder(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// Dir is the locked directory.
func (l *Lock) Dir() string { return l.dir }

// Unlock releases the lock. The file stays, so the next holder reuses it.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor releases the flock
	l.f = nil
	return err
}
