package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/eventstore"
)

// The export, import and migrate commands copy every stream between event
// stores, or through a JSON Lines file, keeping each stream's order and
// every event's ID, type, data and metadata. Each is safe to run again
// after an interruption, and ends by comparing per-stream event counts and
// content hashes (eventstore.Digests) of source and destination.

func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := flagset.New("ordo export --out FILE.jsonl [--restart] [--esdb-url URL | --data DIR]",
		"Writes every event of the store, in $all order, to FILE as JSON Lines (one event per\n"+
			"line: stream, revision, position, id, type, created, data, metadata). If FILE exists\n"+
			"from an interrupted export, the export continues after its last complete line.\n"+
			"It ends by checking per-stream counts and content hashes of the file against the store.",
		[]string{"ordo export --out backup.jsonl", "ordo export --out backup.jsonl --esdb-url 'esdb://db1:2113?tls=false'"}, stderr)
	sf.register(fs)
	out := fs.String("out", "", "file to write (required)")
	restart := fs.Bool("restart", false, "overwrite FILE instead of continuing it")
	noVerify := fs.Bool("no-verify", false, "skip the final comparison")
	if err := parseNoArgs(fs, args, "export"); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"export needs --out FILE"}
	}
	store, head, done, err := sf.openAtHead(ctx)
	if err != nil {
		return err
	}
	defer done()
	if *restart {
		if err := os.Remove(*out); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	kept, after, err := resumeExportFile(*out)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", *out, err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	prog := newProgress(stderr, "export", after, head)
	var written int64
	var last uint64
	if head > after {
		err = store.ReadAll(ctx, after+1, eventstore.Filter{}, func(e eventstore.RecordedEvent) error {
			if e.Position > head {
				return errPastHead
			}
			line, err := eventstore.MarshalExportLine(e)
			if err != nil {
				return err
			}
			w.Write(line)
			if err := w.WriteByte('\n'); err != nil {
				return fmt.Errorf("write %s: %w", *out, err)
			}
			written, last = written+1, e.Position
			if written%1024 == 0 {
				prog.update(e.Position, written)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPastHead) {
			w.Flush()
			f.Sync()
			return fmt.Errorf("export interrupted after %d events (run it again to continue): %w", written, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", *out, err)
	}
	prog.finish(max(last, head), written)
	fmt.Fprintf(stdout, "exported %d events to %s (%d were already there from an earlier run)\n", written, *out, kept)
	if *noVerify {
		return nil
	}
	src, err := storeDigests(ctx, store, head, nil)
	if err != nil {
		return err
	}
	dst, err := fileDigests(ctx, *out, nil)
	if err != nil {
		return err
	}
	return reportDigests(stdout, src, dst, "the store", *out)
}

// resumeExportFile finds where an earlier export into path stopped: the
// number of complete lines and the $all position of the last one. A torn
// last line (the process died mid-write) is cut off.
func resumeExportFile(path string) (lines int64, after uint64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var good int64 // bytes of complete, valid lines
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			e, perr := eventstore.UnmarshalExportLine(bytes.TrimSpace(line))
			if perr != nil {
				return 0, 0, fmt.Errorf("%s line %d is not an export line (%v); use --restart to overwrite the file", path, lines+1, perr)
			}
			lines, after, good = lines+1, e.Position, good+int64(len(line))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return lines, after, f.Truncate(good)
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := flagset.New("ordo import FILE.jsonl [--esdb-url URL | --data DIR]",
		"Appends the events of an export file to the store, stream by stream in order, keeping\n"+
			"their IDs, types, data and metadata. Events a stream already holds (an earlier,\n"+
			"interrupted import) are skipped, so running it again is safe. It ends by checking\n"+
			"per-stream counts and content hashes of the store against the file.",
		[]string{"ordo import backup.jsonl --data ./restored-data", "ordo import backup.jsonl --esdb-url 'esdb://db1:2113?tls=false'"}, stderr)
	sf.register(fs)
	writers := fs.Int("writers", 16, "concurrent appends")
	noVerify := fs.Bool("no-verify", false, "skip the final comparison")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"import needs exactly one FILE"}
	}
	path := pos[0]
	// The input first: a missing file must create no store.
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	store, done, err := sf.openOrCreate(ctx)
	if err != nil {
		return err
	}
	defer done()
	im := eventstore.NewImporter(ctx, store, eventstore.ImporterOptions{Writers: *writers})
	prog := newProgress(stderr, "import", 0, uint64(fi.Size())) // progress in bytes of the file
	var n int64
	src, err := fileDigests(ctx, path, func(e eventstore.RecordedEvent, offset int64) error {
		n++
		if n%1024 == 0 {
			prog.update(uint64(offset), n)
		}
		return im.Add(ctx, e)
	})
	stats, werr := im.Close()
	if err = errors.Join(err, werr); err != nil {
		return fmt.Errorf("import interrupted (run it again to continue): %w", err)
	}
	prog.finish(uint64(fi.Size()), n)
	fmt.Fprintf(stdout, "imported %d events in %d streams from %s: %d appended, %d already present\n", n, len(src), path, stats.Appended, stats.Skipped)
	if *noVerify {
		return nil
	}
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	dst, err := storeDigests(ctx, store, head, src)
	if err != nil {
		return err
	}
	return reportDigests(stdout, src, dst, path, "the store")
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := flagset.New("ordo migrate --to URL [--from URL | --data DIR]",
		"Copies every stream from one event store to another, typically from the embedded store\n"+
			"to an EventStoreDB/KurrentDB cluster, keeping each stream's order and every event's\n"+
			"ID, type, data and metadata. Safe to run again after an interruption: what the target\n"+
			"already holds is skipped. It ends by checking per-stream counts and content hashes.",
		[]string{"ordo migrate --to 'esdb://db1:2113,db2:2113,db3:2113?tls=true'",
			"ordo migrate --from 'esdb://127.0.0.1:2113?tls=false' --to 'esdb://127.0.0.1:2114?tls=false'"}, stderr)
	sf.register(fs)
	fs.StringVar(&sf.url, "from", "", "source event store URL (default: the embedded store in --data)")
	to := fs.String("to", "", "target event store URL (required)")
	writers := fs.Int("writers", 16, "concurrent appends")
	noVerify := fs.Bool("no-verify", false, "skip the final comparison")
	if err := parseNoArgs(fs, args, "migrate"); err != nil {
		return err
	}
	if *to == "" {
		return usageError{"migrate needs --to URL"}
	}
	src, head, done, err := sf.openAtHead(ctx)
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return fmt.Errorf("source: %w", err)
	}
	defer done()
	dst, err := eventstore.Connect(ctx, *to)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer dst.Close()
	im := eventstore.NewImporter(ctx, dst, eventstore.ImporterOptions{Writers: *writers})
	prog := newProgress(stderr, "migrate", 0, head)
	var n int64
	var last uint64
	srcDigests, err := storeDigests(ctx, src, head, nil, func(e eventstore.RecordedEvent) error {
		n, last = n+1, e.Position
		if n%1024 == 0 {
			prog.update(e.Position, n)
		}
		return im.Add(ctx, e)
	})
	stats, werr := im.Close()
	if err = errors.Join(err, werr); err != nil {
		return fmt.Errorf("migration interrupted (run it again to continue): %w", err)
	}
	prog.finish(max(last, head), n)
	fmt.Fprintf(stdout, "migrated %d events in %d streams: %d appended, %d already present\n", n, len(srcDigests), stats.Appended, stats.Skipped)
	if *noVerify {
		return nil
	}
	dstHead, err := dst.Head(ctx)
	if err != nil {
		return err
	}
	dstDigests, err := storeDigests(ctx, dst, dstHead, srcDigests)
	if err != nil {
		return err
	}
	return reportDigests(stdout, srcDigests, dstDigests, "the source", "the target")
}

// storeDigests reads $all up to head. With only set, it keeps to the
// streams only holds (a target may hold other streams too); each, if
// given, sees every event read.
func storeDigests(ctx context.Context, store *eventstore.Store, head uint64, only eventstore.Digests, each ...func(eventstore.RecordedEvent) error) (eventstore.Digests, error) {
	d := eventstore.Digests{}
	if head == 0 {
		return d, nil
	}
	err := store.ReadAll(ctx, 0, eventstore.Filter{}, func(e eventstore.RecordedEvent) error {
		if e.Position > head {
			return errPastHead
		}
		if only != nil && only[e.Stream] == nil {
			return nil
		}
		d.Add(e)
		for _, f := range each {
			if err := f(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errPastHead) {
		return nil, err
	}
	return d, nil
}

// fileDigests reads an export file; each, if given, sees every event and
// the file offset after it.
func fileDigests(ctx context.Context, path string, each func(eventstore.RecordedEvent, int64) error) (eventstore.Digests, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := eventstore.Digests{}
	r := bufio.NewReaderSize(f, 1<<20)
	var offset int64
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		offset += int64(len(line))
		if len(bytes.TrimSpace(line)) > 0 {
			e, perr := eventstore.UnmarshalExportLine(line)
			if perr != nil {
				return nil, fmt.Errorf("%s line %d: %w", path, lineNo, perr)
			}
			d.Add(e)
			if each != nil {
				if err := each(e, offset); err != nil {
					return nil, err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return nil, err
		}
		if lineNo%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// reportDigests compares both ways and prints the verdict; a difference is
// an error (exit status 1).
func reportDigests(w io.Writer, src, dst eventstore.Digests, srcName, dstName string) error {
	diffs := src.Diff(dst)
	for stream, d := range dst {
		if src[stream] == nil {
			diffs = append(diffs, fmt.Sprintf("%s: %d events only in %s", stream, d.Events, dstName))
		}
	}
	if len(diffs) == 0 {
		fmt.Fprintf(w, "verified: %d streams, %d events; counts and content hashes match between %s and %s\n", len(src), src.Total(), srcName, dstName)
		return nil
	}
	fmt.Fprintf(w, "VERIFICATION FAILED: %d streams differ between %s and %s:\n", len(diffs), srcName, dstName)
	for i, d := range diffs {
		if i == 50 {
			fmt.Fprintf(w, "  … and %d more\n", len(diffs)-i)
			break
		}
		fmt.Fprintln(w, "  "+d)
	}
	return cliError{fmt.Errorf("%d streams differ", len(diffs))}
}

// errPastHead ends a pass at the head it measured at the start, so a
// pass over a live store ends.
var errPastHead = errors.New("past the head")
