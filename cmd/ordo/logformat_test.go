package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestLogFlags(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		wantErr bool
		lines   int    // of one debug, info, warn and error line
		prefix  string // of every line
	}{
		{args: nil, lines: 3, prefix: "time="},
		{args: []string{"--log-format", "json"}, lines: 3, prefix: "{"},
		{args: []string{"--log-format", "json", "--log-level", "warn"}, lines: 2, prefix: "{"},
		{args: []string{"--log-level", "debug"}, lines: 4, prefix: "time="},
		{args: []string{"--log-format", "xml"}, wantErr: true},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var l logFlags
		l.register(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		var buf bytes.Buffer
		log, err := l.logger(&buf)
		if tt.wantErr {
			if !errors.As(err, new(usageError)) {
				t.Errorf("%v: got %v, want a usage error", tt.args, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		log.Debug("d", "command_id", "c-1")
		log.Info("i", "command_id", "c-1")
		log.Warn("w", "command_id", "c-1")
		log.Error("e", "command_id", "c-1")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != tt.lines {
			t.Errorf("%v: got %d lines, want %d:\n%s", tt.args, len(lines), tt.lines, buf.String())
		}
		for _, line := range lines {
			if !strings.HasPrefix(line, tt.prefix) {
				t.Errorf("%v: line %q does not start with %q", tt.args, line, tt.prefix)
			}
			if tt.prefix == "{" {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil || m["command_id"] != "c-1" {
					t.Errorf("%v: line %q is not a JSON object with command_id: %v", tt.args, line, err)
				}
			}
		}
	}
}

// TestLogFlagsLimitRate: the logger of ordo serve passes a burst of lines
// of one kind and counts the rest (one limiter for every part, lograte.go).
func TestLogFlagsLimitRate(t *testing.T) {
	var buf bytes.Buffer
	log, err := logFlags{format: "json"}.logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		log.Warn("command dead-lettered", "code", "invalid_command")
	}
	if n := strings.Count(buf.String(), "\n"); n != logBurst {
		t.Fatalf("got %d lines for 100 dead letters at once, want %d", n, logBurst)
	}
}
