package serve

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ordo-dev/ordo/callbacksig"
)

// The secrets directory (Config.SecretsDir, by default <data>/secrets)
// holds what callers must show: the payment callback secrets, one file per
// provider (callback-<provider>, see callbacksig.LoadDir), and the admin
// endpoints' bearer token. What is missing is generated at start, so a
// fresh `ordo serve` is secure without any setup.
const (
	secretsDirName = "secrets"
	// AdminTokenFile is the admin token's file in the secrets directory.
	AdminTokenFile = "admin-token"
	// defaultCallbackFile holds the callback secret generated at first start.
	defaultCallbackFile = callbacksig.FilePrefix + callbacksig.DefaultProvider
)

// SecretsDir is the secrets directory of a data directory when none is
// configured; the CLI reads the callback secret and the admin token there.
func SecretsDir(dataDir string) string { return filepath.Join(dataDir, secretsDirName) }

// loadSecrets reads the callback secrets and the admin token, generating
// the default callback secret (when no provider has one) and the admin
// token on first start, and says where they are.
func (s *Service) loadSecrets(cfg Config) error {
	dir := cfg.SecretsDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the secrets directory %s: %w", dir, err)
	}
	hasCallback, err := hasCallbackSecret(dir)
	if err != nil {
		return err
	}
	if !hasCallback {
		if err := s.generateSecret(filepath.Join(dir, defaultCallbackFile), "payment callback secret: providers sign callbacks with it (Ordo-Signature)"); err != nil {
			return err
		}
	}
	keys, err := callbacksig.LoadDir(dir)
	if err != nil {
		return err
	}
	tokenPath := filepath.Join(dir, AdminTokenFile)
	if _, err := os.Stat(tokenPath); errors.Is(err, fs.ErrNotExist) {
		if err := s.generateSecret(tokenPath, "admin token: /v1/admin/* and /v1/deadletters require Authorization: Bearer <token>"); err != nil {
			return err
		}
	}
	token, err := ReadAdminToken(tokenPath)
	if err != nil {
		return err
	}
	s.warnIfReadable(dir)
	s.callbacks = callbacksig.Verifier{Keys: keys, Tolerance: cfg.CallbackTolerance}
	s.adminToken = token
	s.log.Info("payment callbacks must be signed; the admin endpoints need the admin token",
		"secrets", dir, "callback_providers", strings.Join(keys.Providers(), ","), "callback_tolerance", s.callbacks.Tolerance)
	return nil
}

// hasCallbackSecret reports whether dir holds a callback-<provider> file.
func hasCallbackSecret(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("read the secrets directory: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), callbacksig.FilePrefix) && len(e.Name()) > len(callbacksig.FilePrefix) {
			return true, nil
		}
	}
	return false, nil
}

// generateSecret writes 32 random bytes, in hex, to a new file only its
// owner can read, and logs where (never what).
func (s *Service) generateSecret(path, what string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("generate %s: %w", path, err)
	}
	if err := replaceFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		return err
	}
	s.log.Warn("generated a secret on first start", "file", path, "what", what)
	return nil
}

// warnIfReadable warns when others than the owner may read the secrets.
func (s *Service) warnIfReadable(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && !e.IsDir() && info.Mode().Perm()&0o077 != 0 {
			s.log.Warn("a secret file is readable by others than its owner: chmod 600 it", "file", filepath.Join(dir, e.Name()), "mode", info.Mode().Perm())
		}
	}
}

// ReadAdminToken reads the admin token from its file (its first line).
func ReadAdminToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the admin token: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	token := bytes.TrimSpace(line)
	if len(token) < 16 {
		return nil, fmt.Errorf("the admin token in %s is %d bytes; use at least 16 random characters (delete the file to have one generated)", path, len(token))
	}
	return token, nil
}
