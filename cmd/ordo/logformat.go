package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// logFlags are the log flags of the long-running commands (ordo serve,
// ordo eventstore serve).
type logFlags struct {
	format string
	level  slog.Level
}

// register adds --log-format and --log-level to fs.
func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line)")
	fs.TextVar(&l.level, "log-level", slog.LevelInfo, "least severe level logged: debug, info, warn or error")
}

// logger builds the command's logger on w: the chosen format and level,
// and at most logBurst lines of one kind every logEvery (lograte.go).
func (l logFlags) logger(w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: l.level}
	var h slog.Handler
	switch l.format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, usageError{fmt.Sprintf("--log-format must be text or json, got %q", l.format)}
	}
	return slog.New(newLimitedHandler(h, logEvery, logBurst, time.Now)), nil
}
