package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startPprof serves Go's profiling endpoints (net/http/pprof) on their own
// listener at addr, which must be a loopback address: profiles and goroutine
// dumps show the service's internals, and the service's HTTP API must never
// carry them, so they get a separate port that is off unless asked for. It
// returns the address it listens on and a function that stops it.
func startPprof(addr string, logger *slog.Logger) (net.Addr, func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, usageError{fmt.Sprintf("--pprof %q: want host:port on loopback, e.g. 127.0.0.1:6060: %v", addr, err)}
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, usageError{fmt.Sprintf("--pprof %q: the profiling endpoints listen on loopback only (127.0.0.1, ::1 or localhost); reach them from elsewhere through an SSH tunnel", addr)}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--pprof: listen on %s: %w (choose another port)", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No WriteTimeout: a CPU profile or trace answers after its ?seconds=.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("pprof listener stopped", "addr", lis.Addr().String(), "err", err)
		}
	}()
	logger.Info("profiling endpoints (net/http/pprof) listening", "url", "http://"+lis.Addr().String()+"/debug/pprof/")
	return lis.Addr(), func() { srv.Close() }, nil
}
