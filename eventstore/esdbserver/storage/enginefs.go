package storage

import "github.com/cockroachdb/pebble/v2/vfs"

// noPreallocFS keeps the engine from preallocating its files. The engine
// reserves every new write-ahead log file at 1.1 times the write buffer,
// whatever the buffer holds yet, and keeps several while the buffer grows,
// so a small store would take many times the disk its events need.
// Without it each file takes what was written. A synced append is not slower for it:
// the preallocation keeps the file's size, so every sync updates it anyway.
type noPreallocFS struct{ vfs.FS }

func (fs noPreallocFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

func (fs noPreallocFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

type noPreallocFile struct{ vfs.File }

func (noPreallocFile) Preallocate(offset, length int64) error { return nil }
