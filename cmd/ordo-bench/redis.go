package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisReserveLua reserves ARGV[1] units only if the counter holds that many.
const redisReserveLua = `local n = tonumber(ARGV[1])
local v = tonumber(redis.call('GET', KEYS[1]) or '-1')
if v >= n then return redis.call('DECRBY', KEYS[1], n) end
return -1`

// benchRedisHotSKU runs the workload against a redis-server it starts with
// appendonly yes and appendfsync always, one connection per client.
func benchRedisHotSKU(ctx context.Context, o hotSKUOptions, sku string) hotSKUClassic {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return hotSKUClassic{Skipped: "redis-server is not installed (Debian: apt-get install redis-server)"}
	}
	dir, err := os.MkdirTemp("", "ordo-bench-redis-")
	if err != nil {
		return hotSKUClassic{Skipped: "temporary directory: " + err.Error()}
	}
	defer os.RemoveAll(dir)
	addr, pid, stop, err := startRedis(ctx, bin, dir)
	if err != nil {
		return hotSKUClassic{Skipped: "redis-server did not start: " + err.Error()}
	}
	defer stop()
	// One client of one connection per bench client, as every bench
	// client of the other systems has its own connection. RESP2: with
	// RESP3 the client peeks for push notifications before every command,
	// a read system call per reservation that only adds client CPU here.
	conns := make([]*redis.Client, o.clients)
	for i := range conns {
		conns[i] = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, MinIdleConns: 1, Protocol: 2,
			DialTimeout: 2 * time.Second, ReadTimeout: hotSKURequestTimeout, WriteTimeout: hotSKURequestTimeout})
		defer conns[i].Close()
	}
	rdb := conns[0]
	key := "stock:" + sku
	setup, sha, err := prepareRedis(ctx, rdb, key)
	if err != nil {
		return hotSKUClassic{Skipped: "prepare redis-server: " + err.Error()}
	}
	// Requests run to their end even when the run's time is up, as
	// Ordo's do (reserveOp), bounded by the client's timeouts.
	rctx, keys := context.WithoutCancel(ctx), []string{key}
	var ok atomic.Int64
	serverCPU, clientCPU := procCPU(pid, false), processCPU()
	res := runLoad(ctx, o.clients, o.duration, func(_ context.Context, c, _ int) error {
		n, err := conns[c].EvalSha(rctx, sha, keys, 1).Int64()
		if err != nil {
			return err
		}
		if n < 0 {
			return errSoldOut
		}
		ok.Add(1)
		return nil
	})
	serverCPU, clientCPU = procCPU(pid, false)-serverCPU, processCPU()-clientCPU
	out := hotSKUClassic{Setup: setup, Result: &res}
	if res.Ops > 0 {
		out.ServerCPUPerOp, out.ClientCPUPerOp = serverCPU/time.Duration(res.Ops), clientCPU/time.Duration(res.Ops)
	}
	left, err := rdb.Get(ctx, key).Int64()
	out.CheckOK = err == nil && left == hotSKUStock-ok.Load()
	out.Check = fmt.Sprintf("counter %v (err %v) after %d successful reservations of %d units", left, err, ok.Load(), int64(hotSKUStock))
	if out.CheckOK {
		out.Check = fmt.Sprintf("counter fell by exactly the %d successful reservations", ok.Load())
	}
	return out
}

// startRedis starts redis-server on a free loopback port, durable on
// every write, and waits until it answers PING.
func startRedis(ctx context.Context, bin, dir string) (addr string, pid int, stop func(), err error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() { stopProcess(cmd) }
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	probe := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, DialTimeout: time.Second, MaxRetries: -1})
	defer probe.Close()
	if err := waitFor(ctx, 10*time.Second, func() error { return probe.Ping(ctx).Err() }); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		return "", 0, nil, fmt.Errorf("%w; log: %s", err, lastLines(string(log), 3))
	}
	return addr, cmd.Process.Pid, stop, nil
}

// prepareRedis checks durability settings, stocks the key and loads the
// script; it returns a description of the setup and the script's SHA1.
func prepareRedis(ctx context.Context, rdb *redis.Client, key string) (setup, sha string, err error) {
	fsync, err := rdb.ConfigGet(ctx, "appendfsync").Result()
	if err != nil {
		return "", "", err
	}
	if fsync["appendfsync"] != "always" {
		return "", "", fmt.Errorf("appendfsync is %v, want always", fsync)
	}
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "", "", err
	}
	version := "?"
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	if err := rdb.Set(ctx, key, hotSKUStock, 0).Err(); err != nil {
		return "", "", err
	}
	if sha, err = rdb.ScriptLoad(ctx, redisReserveLua).Result(); err != nil {
		return "", "", err
	}
	return "redis " + version + ", appendonly yes, appendfsync always, EVALSHA conditional DECRBY", sha, nil
}

// stopProcess asks a child to stop, and kills it after 10 seconds.
func stopProcess(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls probe until it succeeds or limit passes.
func waitFor(ctx context.Context, limit time.Duration, probe func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %s: %w", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
