package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// postgresLauncher is the repository's throwaway-PostgreSQL script, the
// one CI starts the tests' server with; the bench looks for it from the
// working directory upwards.
const postgresLauncher = ".ci/postgres.sh"

// benchPostgresHotSKU runs the workload as a conditional UPDATE of one row,
// on $ORDO_BENCH_POSTGRES_DSN or on a throwaway cluster started with
// .ci/postgres.sh.
func benchPostgresHotSKU(ctx context.Context, o hotSKUOptions, sku string) hotSKUClassic {
	dsn := os.Getenv("ORDO_BENCH_POSTGRES_DSN")
	where := "$ORDO_BENCH_POSTGRES_DSN"
	ownCluster := dsn == ""
	if ownCluster {
		var stop func()
		var err error
		if dsn, stop, err = startPostgres(ctx, max(100, o.clients+20)); err != nil {
			return hotSKUClassic{Skipped: err.Error()}
		}
		defer stop()
		where = "a throwaway cluster on loopback"
	}
	conns := make([]*pgx.Conn, o.clients)
	for i := range conns {
		cctx, cancel := context.WithTimeout(ctx, hotSKURequestTimeout)
		c, err := pgx.Connect(cctx, dsn)
		cancel()
		if err != nil {
			return hotSKUClassic{Skipped: fmt.Sprintf("connect %d clients to PostgreSQL: %v", o.clients, err)}
		}
		conns[i] = c
		defer c.Close(context.WithoutCancel(ctx))
	}
	// The server's CPU is measured only for a cluster this bench started:
	// the postmaster is the parent of any of its backends.
	var serverCPU func() time.Duration
	if postmaster := parentPID(int(conns[0].PgConn().PID())); ownCluster && postmaster > 1 {
		serverCPU = func() time.Duration { return treeCPU(postmaster) }
	}
	table := "ordo_bench_stock_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	setup, err := preparePostgres(ctx, conns[0], table, sku)
	if err != nil {
		return hotSKUClassic{Skipped: "prepare PostgreSQL: " + err.Error()}
	}
	defer conns[0].Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+table)
	update := "UPDATE " + table + " SET qty = qty - $1 WHERE sku = $2 AND qty >= $1"
	var ok atomic.Int64
	var pgCPU time.Duration
	if serverCPU != nil {
		pgCPU = serverCPU()
	}
	clientCPU := processCPU()
	res := runLoad(ctx, o.clients, o.duration, func(_ context.Context, c, _ int) error {
		rctx, cancel := context.WithTimeout(ctx, hotSKURequestTimeout)
		defer cancel()
		tag, err := conns[c].Exec(rctx, update, int64(1), sku)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return errSoldOut
		}
		ok.Add(1)
		return nil
	})
	clientCPU = processCPU() - clientCPU
	out := hotSKUClassic{Setup: setup + " (" + where + ")", Result: &res}
	if serverCPU != nil && res.Ops > 0 {
		out.ServerCPUPerOp, out.ClientCPUPerOp = (serverCPU()-pgCPU)/time.Duration(res.Ops), clientCPU/time.Duration(res.Ops)
	}
	var left int64
	err = conns[0].QueryRow(ctx, "SELECT qty FROM "+table+" WHERE sku = $1", sku).Scan(&left)
	out.CheckOK = err == nil && left == hotSKUStock-ok.Load()
	out.Check = fmt.Sprintf("qty %d (err %v) after %d successful reservations of %d units", left, err, ok.Load(), int64(hotSKUStock))
	if out.CheckOK {
		out.Check = fmt.Sprintf("qty fell by exactly the %d successful reservations", ok.Load())
	}
	return out
}

// preparePostgres creates the one-row table and reports the server's
// durability settings, refusing to measure without them.
func preparePostgres(ctx context.Context, c *pgx.Conn, table, sku string) (string, error) {
	var version, syncCommit, fsync string
	for q, dst := range map[string]*string{"SHOW server_version": &version, "SHOW synchronous_commit": &syncCommit, "SHOW fsync": &fsync} {
		if err := c.QueryRow(ctx, q).Scan(dst); err != nil {
			return "", err
		}
	}
	if syncCommit != "on" || fsync != "on" {
		return "", fmt.Errorf("synchronous_commit is %s and fsync %s; both must be on for a durable comparison", syncCommit, fsync)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE "+table+" (sku text PRIMARY KEY, qty bigint NOT NULL CHECK (qty >= 0))"); err != nil {
		return "", err
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+table+" (sku, qty) VALUES ($1, $2)", sku, int64(hotSKUStock)); err != nil {
		return "", err
	}
	return "PostgreSQL " + version + ", synchronous_commit on, fsync on, conditional UPDATE of one row", nil
}

// startPostgres starts a throwaway cluster with the repository's launcher
// on a free loopback port, without installing PostgreSQL when it is
// missing. It returns the DSN and a function that stops and removes the
// cluster.
func startPostgres(ctx context.Context, maxConns int) (dsn string, stop func(), err error) {
	script, err := findLauncher()
	if err != nil {
		return "", nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return "", nil, err
	}
	env := append(os.Environ(), "ORDO_PG_PORT="+strconv.Itoa(port), "ORDO_PG_MAX_CONNECTIONS="+strconv.Itoa(maxConns), "ORDO_PG_INSTALL=no")
	launch := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		cmd.Env = env
		return cmd
	}
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = launch(sctx, "stop").Run()
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := launch(sctx)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == launcherNotInstalled:
		return "", nil, errors.New("PostgreSQL is not installed (Debian: apt-get install postgresql)")
	case err != nil:
		stop()
		return "", nil, fmt.Errorf("PostgreSQL did not start: %s: %v: %s", postgresLauncher, err, lastLines(stderr.String(), 3))
	}
	return strings.TrimSpace(string(out)), stop, nil
}

// launcherNotInstalled is the launcher's exit status when PostgreSQL is
// missing and ORDO_PG_INSTALL=no forbids installing it.
const launcherNotInstalled = 3

// findLauncher looks for .ci/postgres.sh in the working directory and its
// parents, so the bench finds it from anywhere in the repository.
func findLauncher() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, postgresLauncher)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in the working directory or above: run the bench inside the Ordo repository, or set ORDO_BENCH_POSTGRES_DSN", postgresLauncher)
		}
		dir = parent
	}
}
