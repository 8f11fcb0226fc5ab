package callbacksig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultProvider names the secrets of every provider without secrets of
// its own, and of callbacks that name no provider.
const DefaultProvider = "default"

// FilePrefix starts the name of each provider's secret file in a secrets
// directory: callback-<provider> (callback-default, callback-stripe).
const FilePrefix = "callback-"

// Keyring holds each provider's active secrets.
type Keyring struct {
	mu      sync.RWMutex
	secrets map[string][][]byte

	// A keyring loaded from a directory reads it again when callbacks are
	// checked, at most once per reloadEvery, so a secret added or removed
	// for a rotation takes effect without a restart.
	dir         string
	reloadEvery time.Duration
	loaded      time.Time
}

// reloadInterval bounds how often checks reread the directory, so
// callbacks cannot make the service read files at their rate.
const reloadInterval = time.Second

// NewKeyring returns a keyring with the given secrets per provider; the
// provider DefaultProvider (or "") covers providers without their own.
func NewKeyring(secrets map[string][][]byte) *Keyring {
	k := &Keyring{secrets: map[string][][]byte{}}
	for p, s := range secrets {
		if p == "" {
			p = DefaultProvider
		}
		k.secrets[p] = append(k.secrets[p], s...)
	}
	return k
}

// Secrets returns the provider's secrets, or the default ones when the
// provider has none of its own (nil if neither exists). A provider with
// its own secrets is never checked against the default ones.
func (k *Keyring) Secrets(provider string) [][]byte {
	if k == nil {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if s, ok := k.secrets[provider]; ok && provider != "" {
		return s
	}
	return k.secrets[DefaultProvider]
}

// Providers lists the providers with secrets, sorted.
func (k *Keyring) Providers() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var ps []string
	for p := range k.secrets {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// LoadDir reads every callback-<provider> file of dir. Each non-empty line
// of a file is one active secret (two lines while a secret is rotated);
// lines starting with # are comments. Surrounding spaces are dropped; the
// secret is the line's bytes, as `openssl dgst -hmac` takes it.
//
// Secrets added to or removed from the directory later (a rotation) take
// effect without a restart: Verifier reads the directory again when it
// checks a callback, at most once a second.
func LoadDir(dir string) (*Keyring, error) {
	k, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	k.dir, k.reloadEvery, k.loaded = dir, reloadInterval, time.Now()
	return k, nil
}

// reload reads the keyring's directory again if it has one and the last
// read is long enough ago; it reports whether the secrets were replaced.
// A directory that cannot be read now keeps the secrets held.
func (k *Keyring) reload() bool {
	if k == nil || k.dir == "" {
		return false
	}
	k.mu.Lock()
	if time.Since(k.loaded) < k.reloadEvery {
		k.mu.Unlock()
		return false
	}
	k.loaded = time.Now()
	k.mu.Unlock()
	fresh, err := readDir(k.dir)
	if err != nil {
		return false
	}
	k.mu.Lock()
	k.secrets = fresh.secrets
	k.mu.Unlock()
	return true
}

func readDir(dir string) (*Keyring, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read callback secrets: %w", err)
	}
	k := NewKeyring(nil)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, FilePrefix) || len(name) == len(FilePrefix) {
			continue
		}
		path := filepath.Join(dir, name)
		secrets, err := ReadFile(path)
		if err != nil {
			return nil, err
		}
		provider := strings.TrimPrefix(name, FilePrefix)
		k.secrets[provider] = secrets
	}
	return k, nil
}

// ReadFile reads the secrets of one file (see LoadDir). A file without a
// secret is an error: it would refuse every callback of its provider.
func ReadFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("callback secret %s does not exist: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read callback secret: %w", err)
	}
	secrets := Parse(b)
	if len(secrets) == 0 {
		return nil, fmt.Errorf("callback secret file %s holds no secret: write one per line (two while rotating)", path)
	}
	return secrets, nil
}

// Parse reads secrets, one per non-empty line, # starting a comment line.
func Parse(b []byte) [][]byte {
	var secrets [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		secrets = append(secrets, append([]byte(nil), line...))
	}
	return secrets
}
