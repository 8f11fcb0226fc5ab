package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

// headFile, in the store's directory, keeps the last position the store
// acknowledged in a second place, outside the storage engine's own files:
// when the engine comes back with fewer records (a truncated or damaged
// write-ahead log, a truncated MANIFEST, files from another directory), Open
// sees the difference and refuses to start instead of silently serving a
// shorter history.
//
// The writer records the head after every synced group commit, with one
// small write and no sync of its own: the record is written only after the
// log is durable, so it can lag behind the engine (after a machine crash)
// but never run ahead of it. Close syncs it.
//
// Layout: two 32-byte slots, written alternately, each "ORDH", a sequence
// number, the head and a CRC-32C of the first 20 bytes; the valid slot with
// the higher sequence wins, so a torn write of one slot loses nothing.
const headFile = "ordo.head"

const (
	headSlotSize = 32
	headMagic    = "ORDH"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// headRecord is the open head file.
type headRecord struct {
	f   *os.File
	seq uint64
	buf [headSlotSize]byte
}

// readHead reads the recorded head of dir. ok is false when there is no
// head file; an error means the file exists but neither slot is valid.
func readHead(dir string) (head Position, seq uint64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, headFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	found := false
	for off := 0; off+headSlotSize <= len(b); off += headSlotSize {
		if s, h, valid := decodeHeadSlot(b[off : off+headSlotSize]); valid && (!found || s > seq) {
			seq, head, found = s, h, true
		}
	}
	if !found {
		return 0, 0, true, fmt.Errorf("%s is damaged (no valid record of the acknowledged head)", filepath.Join(dir, headFile))
	}
	return head, seq, true, nil
}

func decodeHeadSlot(b []byte) (seq uint64, head Position, ok bool) {
	if string(b[:4]) != headMagic {
		return 0, 0, false
	}
	if crc32.Checksum(b[:20], crcTable) != binary.BigEndian.Uint32(b[20:24]) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b[4:12]), Position(binary.BigEndian.Uint64(b[12:20])), true
}

// openHeadRecord opens (creating) dir's head file for writing; the next
// record gets sequence seq+1.
func openHeadRecord(dir string, seq uint64) (*headRecord, error) {
	f, err := os.OpenFile(filepath.Join(dir, headFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", headFile, err)
	}
	return &headRecord{f: f, seq: seq}, nil
}

// record writes head to the next slot. It needs no new disk space once
// both slots exist, so it keeps working on a full disk.
func (h *headRecord) record(head Position) error {
	h.seq++
	b := h.buf[:]
	copy(b[:4], headMagic)
	binary.BigEndian.PutUint64(b[4:12], h.seq)
	binary.BigEndian.PutUint64(b[12:20], uint64(head))
	binary.BigEndian.PutUint32(b[20:24], crc32.Checksum(b[:20], crcTable))
	_, err := h.f.WriteAt(b, int64(h.seq%2)*headSlotSize)
	return err
}

// sync makes the recorded head durable.
func (h *headRecord) sync() error { return h.f.Sync() }

func (h *headRecord) close() error {
	err := h.f.Sync()
	if cerr := h.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// LostEventsError: the storage engine holds fewer records than the store
// had acknowledged. Open refuses such a store.
type LostEventsError struct {
	Dir          string
	Head         Position // the last record the engine holds
	Acknowledged Position // the last record the store had acknowledged
}

func (e *LostEventsError) Error() string {
	return fmt.Sprintf("the event store in %s is missing acknowledged events: it holds positions up to %d, "+
		"but positions up to %d were acknowledged (%d events lost: its write-ahead log or MANIFEST was truncated, damaged or replaced). "+
		"It was not started. Restore the directory from a backup, or import an export into a new one (ordo import FILE --data DIR); "+
		"to run with the %d events that remain, accept the loss with: ordo eventstore check --data %s --accept-loss",
		e.Dir, e.Head, e.Acknowledged, e.Acknowledged-e.Head, e.Head, e.Dir)
}
