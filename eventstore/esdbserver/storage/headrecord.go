package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
// number, the head, the number of positions up to it the store knowingly
// lacks (accepted losses, see Check) and a CRC-32C of the first 28 bytes;
// the valid slot with the higher sequence wins, so a torn write of one
// slot loses nothing.
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

// headState is what the head file records.
type headState struct {
	Head    Position // the last position acknowledged
	Missing uint64   // positions up to Head accepted as lost
	seq     uint64
}

// readHead reads the recorded head of dir. ok is false when there is no
// head file; an error means the file exists but neither slot is valid.
func readHead(dir string) (st headState, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, headFile))
	if errors.Is(err, fs.ErrNotExist) {
		return headState{}, false, nil
	}
	if err != nil {
		return headState{}, false, err
	}
	found := false
	for off := 0; off+headSlotSize <= len(b); off += headSlotSize {
		if h, valid := decodeHeadSlot(b[off : off+headSlotSize]); valid && (!found || h.seq > st.seq) {
			st, found = h, true
		}
	}
	if !found {
		return headState{}, true, fmt.Errorf("%s is damaged (no valid record of the acknowledged head)", filepath.Join(dir, headFile))
	}
	return st, true, nil
}

func decodeHeadSlot(b []byte) (headState, bool) {
	if string(b[:4]) != headMagic || crc32.Checksum(b[:28], crcTable) != binary.BigEndian.Uint32(b[28:32]) {
		return headState{}, false
	}
	return headState{seq: binary.BigEndian.Uint64(b[4:12]), Head: Position(binary.BigEndian.Uint64(b[12:20])),
		Missing: binary.BigEndian.Uint64(b[20:28])}, true
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

// record writes head and the accepted losses to the next slot. It needs
// no new disk space once both slots exist, so it keeps working on a full
// disk.
func (h *headRecord) record(head Position, missing uint64) error {
	h.seq++
	b := h.buf[:]
	copy(b[:4], headMagic)
	binary.BigEndian.PutUint64(b[4:12], h.seq)
	binary.BigEndian.PutUint64(b[12:20], uint64(head))
	binary.BigEndian.PutUint64(b[20:28], missing)
	binary.BigEndian.PutUint32(b[28:32], crc32.Checksum(b[:28], crcTable))
	_, err := h.f.WriteAt(b, int64(h.seq%2)*headSlotSize)
	return err
}

func (h *headRecord) close() error {
	err := h.f.Sync()
	if cerr := h.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Gap is a run of positions missing from the log.
type Gap struct{ From, To Position }

// LostEventsError: the storage engine holds fewer records than the store
// had acknowledged: its tail is gone (Head < Acknowledged) or positions in
// the middle are (Gaps). Open refuses such a store.
type LostEventsError struct {
	Dir          string
	Head         Position // the last record the engine holds
	Acknowledged Position // the last record the store had acknowledged
	Missing      uint64   // positions up to Head that are gone
	Gaps         []Gap    // the first runs of them
}

// Lost is how many acknowledged events are gone.
func (e *LostEventsError) Lost() uint64 {
	n := e.Missing
	if e.Acknowledged > e.Head {
		n += uint64(e.Acknowledged - e.Head)
	}
	return n
}

func (e *LostEventsError) Error() string {
	var what string
	switch {
	case len(e.Gaps) > 0:
		what = fmt.Sprintf("%d acknowledged events are gone (positions %s; the engine's MANIFEST or a table was truncated, damaged or replaced)",
			e.Lost(), gapList(e.Gaps, e.Missing))
	default:
		what = fmt.Sprintf("it holds positions up to %d, but positions up to %d were acknowledged (%d events lost: "+
			"its write-ahead log or MANIFEST was truncated, damaged or replaced)", e.Head, e.Acknowledged, e.Lost())
	}
	return fmt.Sprintf("the event store in %s is missing acknowledged events: %s. It was not started. "+
		"Restore the directory from a backup, or import an export into a new one (ordo import FILE --data DIR); "+
		"to run with the events that remain (and export them), accept the loss with: ordo eventstore check --data %s --accept-loss",
		e.Dir, what, e.Dir)
}

// gapList renders the first gaps, "3673 to 7890, 9000 to 9001, …".
func gapList(gaps []Gap, missing uint64) string {
	var b strings.Builder
	var listed uint64
	for i, g := range gaps {
		if i > 0 {
			b.WriteString(", ")
		}
		if g.From == g.To {
			fmt.Fprintf(&b, "%d", g.From)
		} else {
			fmt.Fprintf(&b, "%d to %d", g.From, g.To)
		}
		listed += uint64(g.To-g.From) + 1
	}
	if listed < missing {
		b.WriteString(", …")
	}
	return b.String()
}
