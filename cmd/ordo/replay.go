package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/cmd/relaxgc"
	"github.com/ordo-dev/ordo/projections"
)

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var sf storeFlags
	fs := flagset.New("ordo replay [--projection NAME | --all] [--from POSITION] [--restart] [--data DIR]",
		"Rebuilds the read models from the event store into fresh tables and swaps them in\n"+
			"atomically once they have caught up. While `ordo serve` runs on --data, the service\n"+
			"does the rebuild and its API keeps serving the old read models until the swap;\n"+
			"otherwise the rebuild runs here. Ctrl-C stops it, leaves the live read models\n"+
			"untouched, and the next `ordo replay` resumes where it stopped (--restart starts over).\n"+
			"Projections: "+projections.Name+" (order summaries, payments, shipments, refunds).\n"+
			"A local rebuild runs the garbage collector less often than Go's default (GOGC=400);\n"+
			"set GOGC (e.g. GOGC=100) to choose.",
		[]string{"ordo replay --all", "ordo replay --projection orders --restart", "ordo replay --all --data /var/lib/ordo"}, stderr)
	sf.register(fs)
	name := fs.String("projection", "", "the projection to rebuild: "+projections.Name)
	all := fs.Bool("all", false, "rebuild every projection")
	from := fs.Uint64("from", 0, "refused unless 0: a rebuild replays the whole history (read models rebuilt from a later position would lack every earlier order)")
	restart := fs.Bool("restart", false, "discard a partial earlier rebuild instead of resuming it")
	dsn := fs.String("readmodel-dsn", "", "PostgreSQL read models (postgres://…), as given to ordo serve (default: SQLite files in --data)")
	adminToken := registerAdminToken(fs)
	if err := parseNoArgs(fs, args, "replay"); err != nil {
		return err
	}
	switch {
	case *all == (*name != ""):
		return usageError{"replay needs exactly one of --projection NAME and --all"}
	case *name != "" && *name != projections.Name:
		return usageError{fmt.Sprintf("unknown projection %q; the projections are: %s", *name, projections.Name)}
	}
	opts := projections.RebuildOptions{From: *from, Restart: *restart}
	if rt, ok, err := serve.ReadRuntime(sf.data); err != nil {
		return err
	} else if ok && rt.HTTPAddr != "" && sf.url == "" {
		token, err := adminToken.token(sf.data, os.Getenv)
		if err != nil {
			return err
		}
		err = replayRemote(ctx, rt.HTTPAddr, token, opts, stdout, stderr)
		if !errors.Is(err, errServiceGone) {
			return err
		}
	}
	return replayLocal(ctx, &sf, *dsn, opts, stdout, stderr)
}

// errServiceGone: serve.json named a service that does not answer (it
// crashed); the rebuild then runs locally.
var errServiceGone = errors.New("the service named in serve.json does not answer")

// replayReport is how often a local rebuild reports progress, and a hook
// that sees each report; tests shorten the one and use the other to
// interrupt a rebuild part-way, as Ctrl-C would.
var replayReport = struct {
	interval time.Duration
	hook     func(projections.RebuildProgress)
}{interval: 200 * time.Millisecond}

// replayLocal rebuilds in this process, over the data directory.
func replayLocal(ctx context.Context, sf *storeFlags, dsn string, opts projections.RebuildOptions, stdout, stderr io.Writer) error {
	store, head, done, err := sf.openAtHead(ctx)
	if err != nil {
		return err
	}
	defer done()
	m, err := projections.OpenManagerDSN(ctx, dsn, sf.data, serve.ProjectionSource{Store: store}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer m.Close()
	defer relaxgc.Set()()
	prog := newProgress(stderr, "replay "+projections.Name, opts.From, head)
	var last projections.RebuildProgress
	opts.Interval = replayReport.interval
	opts.Progress = func(p projections.RebuildProgress) {
		last = p
		prog.update(p.Position, p.Events)
		if replayReport.hook != nil {
			replayReport.hook(p)
		}
	}
	start := time.Now()
	if err := m.Rebuild(ctx, opts); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr)
			return fmt.Errorf("replay interrupted at position %d; the live read models are untouched; run ordo replay again to resume", last.Position)
		}
		return err
	}
	prog.finish(last.Position, last.Events)
	fmt.Fprintf(stdout, "rebuilt %s: %d events up to position %d in %.1fs, swapped in\n", projections.Name, last.Events, last.Position, time.Since(start).Seconds())
	return nil
}

// replayRemote asks the running service to rebuild and follows it.
func replayRemote(ctx context.Context, addr, token string, opts projections.RebuildOptions, stdout, stderr io.Writer) error {
	base := "http://" + addr + "/v1/admin/rebuild"
	adminCall := func(ctx context.Context, method, u string) (*http.Response, []byte, error) {
		return adminRequest(ctx, method, u, token)
	}
	q := url.Values{"from": {strconv.FormatUint(opts.From, 10)}, "restart": {strconv.FormatBool(opts.Restart)}}
	resp, body, err := adminCall(ctx, http.MethodPost, base+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("%w: %v", errServiceGone, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("the service at %s refused the rebuild: %s", addr, bytes.TrimSpace(body))
	}
	fmt.Fprintf(stderr, "the service at %s is rebuilding; its API serves the current read models until the swap\n", addr)
	// From the request on, so the rate counts the rebuild's whole time even
	// when the first report is the last (a rebuild quicker than one tick).
	prog := newProgress(stderr, "replay "+projections.Name, opts.From, 0)
	start := prog.start
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Ctrl-C: stop the service's rebuild too; it resumes next time.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_, _, err := adminCall(cctx, http.MethodDelete, base)
			cancel()
			fmt.Fprintln(stderr)
			if err != nil {
				return fmt.Errorf("replay interrupted, but the service did not confirm it stopped the rebuild: %w", err)
			}
			return errors.New("replay interrupted; the live read models are untouched; run ordo replay again to resume")
		case <-tick.C:
		}
		resp, body, err := adminCall(ctx, http.MethodGet, base)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return fmt.Errorf("following the rebuild: %w", err)
		}
		var p projections.RebuildProgress
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &p) != nil {
			return fmt.Errorf("following the rebuild: %s %s", resp.Status, bytes.TrimSpace(body))
		}
		prog.head = max(prog.head, p.Head)
		switch {
		case p.Running:
			prog.update(p.Position, p.Events)
		case p.Error != "":
			fmt.Fprintln(stderr)
			return fmt.Errorf("the rebuild failed: %s", p.Error)
		case p.Done:
			prog.finish(p.Position, p.Events)
			fmt.Fprintf(stdout, "rebuilt %s: %d events up to position %d in %.1fs, swapped in by the running service\n",
				projections.Name, p.Events, p.Position, time.Since(start).Seconds())
			return nil
		}
	}
}

// adminRequest calls an admin endpoint of the running service with its
// admin token.
func adminRequest(ctx context.Context, method, u, token string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}
