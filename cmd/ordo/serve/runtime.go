package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// runtimeFile, in the data directory, tells operator tools (ordo replay,
// history, verify, …) that a service is running on it and where to reach
// it: the embedded event store's files are locked while the service runs.
const runtimeFile = "serve.json"

// Runtime is where a running service can be reached.
type Runtime struct {
	PID      int    `json:"pid"`
	ESDBURL  string `json:"esdb_url"`
	NATSURL  string `json:"nats_url"`
	HTTPAddr string `json:"http_addr"`
}

// ReadRuntime reads the runtime file of the service using dataDir. ok is
// false when there is none (no service ran, or it shut down cleanly). A
// file left by a crashed service may name addresses nobody answers on;
// callers fall back to opening the directory themselves.
func ReadRuntime(dataDir string) (rt Runtime, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, runtimeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Runtime{}, false, nil
	}
	if err != nil {
		return Runtime{}, false, err
	}
	if err := json.Unmarshal(b, &rt); err != nil {
		return Runtime{}, false, fmt.Errorf("%s: %w", filepath.Join(dataDir, runtimeFile), err)
	}
	return rt, true, nil
}

func (s *Service) writeRuntime(dataDir string) error {
	b, err := json.MarshalIndent(Runtime{PID: os.Getpid(), ESDBURL: s.ESDBURL(), NATSURL: s.natsURL, HTTPAddr: s.HTTPAddr()}, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, runtimeFile)
	if err := replaceFile(path, append(b, '\n'), 0o666); err != nil {
		return err
	}
	s.runtimePath = path
	return nil
}
