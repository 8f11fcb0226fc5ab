package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-dev/ordo/callbacksig"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/projections"
)

// secretsDir is where the service under test keeps its secrets.
func (s *system) secretsDir() string {
	if s.cfg.SecretsDir != "" {
		return s.cfg.SecretsDir
	}
	return serve.SecretsDir(s.cfg.DataDir)
}

// signer signs callbacks with the secrets the service generated (or was
// given), as a payment provider holding them does.
func (s *system) signer(tb testing.TB) callbacksig.Signer {
	tb.Helper()
	keys, err := callbacksig.LoadDir(s.secretsDir())
	if err != nil {
		tb.Fatalf("the service's callback secrets: %v", err)
	}
	return callbacksig.Signer{Keys: keys}
}

// sign is the Ordo-Signature of a callback body, made now.
func (s *system) sign(tb testing.TB, body string) string {
	tb.Helper()
	sig, err := s.signer(tb).SignCallback([]byte(body), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// adminHeader carries the service's admin token.
func (s *system) adminHeader(tb testing.TB) http.Header {
	tb.Helper()
	token, err := serve.ReadAdminToken(filepath.Join(s.secretsDir(), serve.AdminTokenFile))
	if err != nil {
		tb.Fatal(err)
	}
	return http.Header{"Authorization": {"Bearer " + string(token)}}
}

// TestPaymentCallbackSignatureOverHTTP: POST /v1/payments/callback takes
// only callbacks signed with the secret the service generated at its
// first start; an unsigned, mis-signed, expired, replayed or tampered one
// gets 401 unauthenticated and changes nothing.
func TestPaymentCallbackSignatureOverHTTP(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	secretFile := filepath.Join(s.secretsDir(), "callback-default")
	for path, mode := range map[string]os.FileMode{s.secretsDir(): 0o700, secretFile: 0o600} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want mode %v", path, info.Mode().Perm(), err, mode)
		}
	}
	secret := s.signer(t).Keys.Secrets("stripe")[0]
	id := awaitingOrder(t, s)
	body := callbackJSON(id, "pi_signed", "succeeded", total)
	tampered := strings.Replace(body, `"amount":`+strconv.Itoa(total), `"amount":1`, 1)
	now := time.Now()
	captured := callbacksig.Sign(now.Add(-6*time.Minute), []byte(body), secret)
	replayed := "t=" + strconv.FormatInt(now.Unix(), 10) + captured[strings.Index(captured, ","):]

	for _, tt := range []struct {
		name, body, signature string
	}{
		{"unsigned", body, ""},
		{"mis-signed", body, callbacksig.Sign(now, []byte(body), []byte("not the secret"))},
		{"expired", body, captured},
		{"replayed: old signature, new timestamp", body, replayed},
		{"tampered", tampered, callbacksig.Sign(now, []byte(body), secret)},
		{"malformed", body, "sha256=abc"},
		{"unsigned and malformed", `{"order_id":`, ""},
	} {
		status, r := postSignedCallback(t, s, tt.body, tt.signature)
		if status != http.StatusUnauthorized || r.Error == nil || r.Error.Code != "unauthenticated" || r.Error.Field != callbacksig.Header {
			t.Fatalf("%s: %d %+v, want 401 unauthenticated on %s", tt.name, status, r.Error, callbacksig.Header)
		}
		checkCode(t, tt.name, r.Error.Code)
		if strings.Contains(r.Error.Message, string(secret)) || strings.Contains(r.Error.Message, s.secretsDir()) {
			t.Fatalf("%s: the refusal shows the secret or where it is: %s", tt.name, r.Error.Message)
		}
	}
	evs := streamEvents(t, s, id)
	if got := evs[len(evs)-1].Type; got != "StockReserved" {
		t.Fatalf("after the refused callbacks the order's last event is %s, want StockReserved (nothing recorded)", got)
	}
	status, r := postCallback(t, s, body)
	wantOK(t, "the signed callback", status, r, []string{"PaymentSucceeded"}, false)
}

// TestPaymentCallbackPerProviderSecretsAndRotation: secrets an operator
// put in the secrets directory are used instead of a generated one; a
// provider with two secrets (a rotation) is accepted with either, and the
// default secret does not sign for a provider with secrets of its own.
func TestPaymentCallbackPerProviderSecretsAndRotation(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "operator-secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("callback-stripe", "whsec_old\nwhsec_new\n")
	write("callback-other", "other-provider-secret\n")
	cfg := config(t, dir)
	cfg.SecretsDir = secrets
	s := start(t, cfg)
	if _, err := os.Stat(filepath.Join(secrets, "callback-default")); err == nil {
		t.Fatal("a default callback secret was generated although the operator configured providers")
	}
	if _, err := os.Stat(serve.SecretsDir(dir)); err == nil {
		t.Fatal("secrets were written to the data directory although --secrets names another")
	}
	now := time.Now()
	for _, tt := range []struct {
		payment, secret string
		status          int
	}{
		{"pi_old", "whsec_old", http.StatusOK},
		{"pi_new", "whsec_new", http.StatusOK},
		{"pi_other", "other-provider-secret", http.StatusUnauthorized},
	} {
		id := awaitingOrder(t, s)
		body := callbackJSON(id, tt.payment, "succeeded", total)
		status, r := postSignedCallback(t, s, body, callbacksig.Sign(now, []byte(body), []byte(tt.secret)))
		if status != tt.status {
			t.Fatalf("stripe callback signed with %s: %d %+v, want %d", tt.secret, status, r, tt.status)
		}
	}
}

// TestAdminEndpointsRequireToken: /v1/admin/* answers only a request
// with the admin token the service generated; without it (or with
// another, or another scheme) it is 401 and nothing starts.
func TestAdminEndpointsRequireToken(t *testing.T) {
	s := start(t, config(t, t.TempDir()))
	tokenFile := filepath.Join(s.secretsDir(), serve.AdminTokenFile)
	if info, err := os.Stat(tokenFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, want mode 0600", tokenFile, err)
	}
	token := strings.TrimPrefix(s.adminHeader(t).Get("Authorization"), "Bearer ")
	base := "http://" + s.svc.HTTPAddr() + "/v1/admin/rebuild"
	for _, tt := range []struct {
		name, method, authorization string
	}{
		{"no token", http.MethodPost, ""},
		{"wrong token", http.MethodPost, "Bearer " + strings.Repeat("0", len(token))},
		{"token prefix", http.MethodPost, "Bearer " + token[:len(token)-1]},
		{"token as basic auth", http.MethodPost, "Basic " + token},
		{"bare token", http.MethodPost, token},
		{"follow without token", http.MethodGet, ""},
		{"cancel without token", http.MethodDelete, ""},
		{"unknown admin path", http.MethodGet, ""},
	} {
		var body apiError
		u := base
		if tt.name == "unknown admin path" {
			u = "http://" + s.svc.HTTPAddr() + "/v1/admin/nope"
		}
		resp, raw := callWith(t, tt.method, u, http.Header{"Authorization": {tt.authorization}}, &body)
		if resp.StatusCode != http.StatusUnauthorized || body.Error.Code != "unauthenticated" || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s, want 401 unauthenticated with WWW-Authenticate", tt.name, resp.StatusCode, raw)
		}
		checkCode(t, tt.name, body.Error.Code)
	}
	// Nothing was started: with the token, there is no rebuild to follow.
	var body apiError
	if resp, raw := callWith(t, http.MethodGet, base, s.adminHeader(t), &body); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET with the token after refused starts: %d %s, want 404 (no rebuild)", resp.StatusCode, raw)
	}
	var p projections.RebuildProgress
	if resp, raw := callWith(t, http.MethodPost, base, s.adminHeader(t), &p); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST with the token: %d %s, want 202", resp.StatusCode, raw)
	}
}

// TestServeRefusesUnusableSecrets: a secret file that would refuse every
// request (no secret in it, a token too short to be secret) stops the
// service at start, naming the file, rather than running without it.
func TestServeRefusesUnusableSecrets(t *testing.T) {
	for _, tt := range []struct{ file, content string }{
		{"callback-stripe", "# the secret goes here\n"},
		{serve.AdminTokenFile, "short\n"},
	} {
		dir := t.TempDir()
		secrets := serve.SecretsDir(dir)
		if err := os.MkdirAll(secrets, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(secrets, tt.file), []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		svc, err := serve.Start(ctxT(t), config(t, dir))
		if err == nil {
			svc.Shutdown(ctxT(t))
			t.Fatalf("%s holding %q: the service started", tt.file, tt.content)
		}
		if !strings.Contains(err.Error(), tt.file) {
			t.Fatalf("%s holding %q: %v, want an error naming the file", tt.file, tt.content, err)
		}
	}
}
