package callbacksig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	old, rotated, stripe, other := []byte("whsec_old"), []byte("whsec_new"), []byte("whsec_stripe"), []byte("whsec_attacker")
	keys := NewKeyring(map[string][][]byte{DefaultProvider: {old, rotated}, "stripe": {stripe}})
	v := Verifier{Keys: keys, Tolerance: 5 * time.Minute}
	body := []byte(`{"order_id":"0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a","payment_id":"pi_1","amount":2500,"currency":"EUR","status":"succeeded"}`)
	stripeBody := []byte(`{"order_id":"0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a","payment_id":"pi_1","amount":2500,"currency":"EUR","status":"succeeded","provider":"stripe"}`)
	tampered := []byte(strings.Replace(string(body), "2500", "2", 1))
	// A signature captured ten minutes ago, its timestamp replaced by now.
	captured := Sign(now.Add(-10*time.Minute), body, old)
	replayed := "t=" + ts(now) + captured[strings.Index(captured, ","):]

	tests := []struct {
		name   string
		header string
		body   []byte
		want   error
	}{
		{"correct", Sign(now, body, old), body, nil},
		{"correct, a second old", Sign(now.Add(-time.Second), body, old), body, nil},
		{"rotation: the new secret", Sign(now, body, rotated), body, nil},
		{"rotation: one v1 per secret, one unknown", Sign(now, body, other, rotated), body, nil},
		{"within the tolerance, ahead", Sign(now.Add(4*time.Minute), body, old), body, nil},
		{"unknown keys are ignored", "v0=abc," + Sign(now, body, old), body, nil},
		{"provider's own secret", Sign(now, stripeBody, stripe), stripeBody, nil},
		{"unsigned", "", body, ErrUnsigned},
		{"blank", "   ", body, ErrUnsigned},
		{"mis-signed: another secret", Sign(now, body, other), body, ErrMismatch},
		{"mis-signed: default secret for a provider with its own", Sign(now, stripeBody, old), stripeBody, ErrMismatch},
		{"mis-signed: provider's secret for another provider", Sign(now, body, stripe), body, ErrMismatch},
		{"expired", Sign(now.Add(-5*time.Minute-time.Second), body, old), body, ErrExpired},
		{"from the future", Sign(now.Add(6*time.Minute), body, old), body, ErrExpired},
		{"replayed: old signature, new timestamp", replayed, body, ErrMismatch},
		{"tampered body", Sign(now, body, old), tampered, ErrMismatch},
		{"tampered provider", Sign(now, body, old), stripeBody, ErrMismatch},
		{"no v1", "t=" + ts(now), body, ErrMalformed},
		{"no t", "v1=" + strings.Repeat("ab", 32), body, ErrMalformed},
		{"two t", "t=1,t=2,v1=" + strings.Repeat("ab", 32), body, ErrMalformed},
		{"t not a number", "t=now,v1=" + strings.Repeat("ab", 32), body, ErrMalformed},
		{"v1 not hex", "t=" + ts(now) + ",v1=zz", body, ErrMalformed},
		{"v1 too short", "t=" + ts(now) + ",v1=abcd", body, ErrMalformed},
		{"not key=value", "t" + ts(now), body, ErrMalformed},
		{"oversize", "t=" + ts(now) + strings.Repeat(",v1="+strings.Repeat("ab", 32), 100), body, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.VerifyCallback(tt.header, tt.body, now)
			if tt.want == nil && err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), "whsec_") || strings.Contains(err.Error(), string(old))) {
				t.Fatalf("the error %q shows a secret", err)
			}
		})
	}
}

func ts(t time.Time) string { return Sign(t, nil)[2:] }

func TestVerifyWithoutSecrets(t *testing.T) {
	now := time.Now()
	body := []byte(`{}`)
	for _, keys := range []*Keyring{nil, NewKeyring(nil), NewKeyring(map[string][][]byte{"stripe": {[]byte("s")}})} {
		err := Verifier{Keys: keys}.VerifyCallback(Sign(now, body, []byte("s")), body, now)
		if !errors.Is(err, ErrNoSecret) {
			t.Errorf("keys %v: got %v, want %v", keys, err, ErrNoSecret)
		}
	}
}

// The default tolerance is five minutes.
func TestVerifyDefaultTolerance(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	v := Verifier{Keys: NewKeyring(map[string][][]byte{"": {[]byte("s")}})}
	body := []byte(`{}`)
	if err := v.VerifyCallback(Sign(now.Add(-DefaultTolerance+time.Second), body, []byte("s")), body, now); err != nil {
		t.Fatalf("4m59s old: %v", err)
	}
	if err := v.VerifyCallback(Sign(now.Add(-DefaultTolerance-time.Second), body, []byte("s")), body, now); !errors.Is(err, ErrExpired) {
		t.Fatalf("5m01s old: got %v, want %v", err, ErrExpired)
	}
}

// Sign is HMAC-SHA256 of "t.body" in hex, as `openssl dgst -sha256 -hmac`
// computes it (the README's example): this vector was made with
//
//	printf '%s' '1760000000.{"a":1}' | openssl dgst -sha256 -hmac secret
func TestSignMatchesOpenSSL(t *testing.T) {
	got := Sign(time.Unix(1_760_000_000, 0), []byte(`{"a":1}`), []byte("secret"))
	want := "t=1760000000,v1=" + opensslVector
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestSignerUsesTheProvidersSecrets(t *testing.T) {
	now := time.Now()
	keys := NewKeyring(map[string][][]byte{DefaultProvider: {[]byte("d")}, "adyen": {[]byte("a1"), []byte("a2")}})
	s, v := Signer{Keys: keys}, Verifier{Keys: keys}
	for _, body := range []string{`{"provider":"adyen"}`, `{"provider":"stripe"}`, `{}`} {
		h, err := s.SignCallback([]byte(body), now)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyCallback(h, []byte(body), now); err != nil {
			t.Errorf("%s signed as %s: %v", body, h, err)
		}
	}
	if _, err := (Signer{Keys: NewKeyring(nil)}).SignCallback([]byte(`{}`), now); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("no secrets: got %v, want %v", err, ErrNoSecret)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("callback-default", "d1\n")
	write("callback-stripe", "# rotating, 2026-12\n  s-old  \n\ns-new\n")
	write("admin-token", "not a callback secret\n")
	keys, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		provider string
		want     []string
	}{
		{"", []string{"d1"}},
		{"default", []string{"d1"}},
		{"adyen", []string{"d1"}},
		{"stripe", []string{"s-old", "s-new"}},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range keys.Secrets(tt.provider) {
			got = append(got, string(s))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("provider %q: got %q, want %q", tt.provider, got, tt.want)
		}
	}
	if got := strings.Join(keys.Providers(), ","); got != "default,stripe" {
		t.Errorf("providers: got %s, want default,stripe", got)
	}
	write("callback-empty", "# nothing yet\n")
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "callback-empty") {
		t.Fatalf("a file without a secret: got %v, want an error naming it", err)
	}
}

// opensslVector is the output of the openssl command above.
const opensslVector = "b6c2583f8204bec09d6388c3b4ef4be121e880606c4f1b491d6f295dc76b09c9"

// TestLoadDirPicksUpARotation: a secret added to a provider's file while
// the service runs is accepted without a restart, and one removed is
// refused; the directory is read again when a callback is checked, not
// more often than the interval.
func TestLoadDirPicksUpARotation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "callback-stripe")
	if err := os.WriteFile(file, []byte("s-old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := Verifier{Keys: keys}
	now := time.Now()
	body := []byte(`{"provider":"stripe"}`)
	check := func(secret string) error { return v.VerifyCallback(Sign(now, body, []byte(secret)), body, now) }

	keys.reloadEvery = time.Hour // just loaded: no second read within the interval
	if err := os.WriteFile(file, []byte("s-old\ns-new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := check("s-new"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("within the interval: got %v, want %v (the directory is not read again yet)", err, ErrMismatch)
	}
	keys.reloadEvery = 0
	for _, s := range []string{"s-new", "s-old"} {
		if err := check(s); err != nil {
			t.Fatalf("after the rotation began, %s: %v", s, err)
		}
	}
	if err := os.WriteFile(file, []byte("s-new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := check("s-old"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("after the old secret was removed: got %v, want %v", err, ErrMismatch)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := check("s-new"); err != nil {
		t.Fatalf("a directory that cannot be read keeps the secrets held: %v", err)
	}
}
