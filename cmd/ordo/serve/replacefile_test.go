package serve

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestReplaceFile: the file holds the new content whole, the temporary
// file is gone, and a generated secret is readable by its owner only.
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint")
	for _, content := range []string{"1\n", "42\n"} {
		if err := replaceFile(path, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != content {
			t.Fatalf("got %q, %v; want %q", got, err, content)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is left behind: %v", err)
	}

	s := &Service{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	secret := filepath.Join(dir, "callback-test")
	if err := s.generateSecret(secret, "a test secret"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(secret)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret file mode %v, want 0600", perm)
	}
	if b, _ := os.ReadFile(secret); !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(b) {
		t.Errorf("secret file holds %q, want 32 bytes in hex and a newline", b)
	}
}
