package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventstore"
)

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and
// localhost, which is also its own CA file, and its key.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ordo test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSecret(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeSecret(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
	return certFile, keyFile
}

func writeSecret(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestSecureServeAndCLI runs the service with `ordo serve`'s security
// flags (NATS users, TLS, the event store's admin password) and drives it
// with the CLI the way an operator would: credentials as flags, as user
// info in NATS_URL, and in the event store URL.
func TestSecureServeAndCLI(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedCert(t, dir)
	authPath, pwPath := filepath.Join(dir, "nats-auth.json"), filepath.Join(dir, "esdb-password")
	writeSecret(t, authPath, fmt.Sprintf(`{"users":[{"user":"shop","password":%q,"role":"client"},{"user":"ops","password":%q,"role":"operator"}]}`,
		bcryptHash(t, "shop-pw"), bcryptHash(t, "ops-pw")))
	writeSecret(t, pwPath, "s3cret\n")

	fs := flag.NewFlagSet("ordo serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sf := addSecurityFlags(fs)
	if err := fs.Parse([]string{"--nats-auth", authPath, "--tls-cert", cert, "--tls-key", key, "--tls-ca", cert,
		"--esdb-admin-password-file", pwPath}); err != nil {
		t.Fatal(err)
	}
	sec, err := sf.security()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	svc := startForCLI(t, ctx, func(cfg *serve.Config) { cfg.ManualStock, cfg.Security = true, sec })
	natsURL := svc.NATSURL()
	if !strings.HasPrefix(natsURL, "tls://") {
		t.Fatalf("NATS URL %s, want tls://", natsURL)
	}

	cli := func(args ...string) (map[string]any, string, error) {
		t.Helper()
		var out, errOut strings.Builder
		err := run(ctx, append(args, "--json"), &out, &errOut)
		var m map[string]any
		_ = json.Unmarshal([]byte(out.String()), &m)
		return m, out.String() + errOut.String(), err
	}
	placed, out, err := cli("order", "place", "--customer", "c-1", "--line", "sku-1:1:100", "--currency", "EUR",
		"--nats-url", natsURL, "--nats-user", "shop", "--nats-password", "shop-pw", "--nats-ca", cert)
	if err != nil || placed["state"] != "placed" {
		t.Fatalf("order place as client: %v\n%s", err, out)
	}
	id := placed["order_id"].(string)
	withUser := strings.Replace(natsURL, "tls://", "tls://shop:shop-pw@", 1)
	// A refusal has its own code, never unavailable (which invites
	// retrying), and says which subject and which role.
	got, out, err := cli("order", "stock-reserved", id, "--nats-url", withUser, "--nats-ca", cert, "--timeout", "5s")
	e, _ := got["error"].(map[string]any)
	if err == nil || e["code"] != "permission_denied" ||
		!strings.Contains(fmt.Sprint(e["message"]), `"ordo.cmd.order.`+id+`.MarkStockReserved"`) || !strings.Contains(fmt.Sprint(e["message"]), `role "operator"`) {
		t.Fatalf("order stock-reserved as client: got %v\n%s\nwant permission_denied naming the subject and the role operator", err, out)
	}
	var text strings.Builder
	if err := run(ctx, []string{"order", "stock-reserved", id, "--nats-url", withUser, "--nats-ca", cert, "--timeout", "5s"}, &text, &text); err == nil ||
		!strings.Contains(err.Error(), "permission_denied") || exitCode(err, io.Discard) == 0 {
		t.Fatalf("order stock-reserved as client, as text: got %v\n%s\nwant permission_denied", err, text.String())
	}
	// The nats CLI's environment: NATS_URL with user info, NATS_CA.
	t.Setenv("NATS_URL", strings.Replace(natsURL, "tls://", "tls://ops:ops-pw@", 1))
	t.Setenv("NATS_CA", cert)
	if got, out, err := cli("order", "stock-reserved", id); err != nil || got["state"] != "awaiting_payment" {
		t.Fatalf("order stock-reserved as operator from NATS_URL: %v\n%s", err, out)
	}

	esdbURL := svc.ESDBURL()
	if !strings.Contains(esdbURL, "tls=true") {
		t.Fatalf("event store URL %s, want tls=true", esdbURL)
	}
	var hist, errOut strings.Builder
	if err := run(ctx, []string{"history", id, "--esdb-url", strings.Replace(esdbURL, "esdb://", "esdb://admin:s3cret@", 1)}, &hist, &errOut); err != nil ||
		!strings.Contains(hist.String(), "StockReserved") {
		t.Fatalf("history with the admin password: %v\n%s%s", err, hist.String(), errOut.String())
	}
	hist.Reset()
	errOut.Reset()
	if err := run(ctx, []string{"history", id, "--esdb-url", strings.Replace(esdbURL, "esdb://", "esdb://admin:wrong@", 1)}, &hist, &errOut); err == nil {
		t.Fatalf("history with a wrong password succeeded:\n%s", hist.String())
	}
}

// TestEventstoreServeTLSAndPassword: `ordo eventstore serve` with a
// certificate and an admin password serves TLS, prints a URL with the CA
// file, and requires the password of every caller; beyond loopback it
// refuses to start without a password.
func TestEventstoreServeTLSAndPassword(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedCert(t, dir)
	pwPath := filepath.Join(dir, "pw")
	writeSecret(t, pwPath, "s3cret\n")

	err := run(context.Background(), []string{"eventstore", "serve", "--listen", "192.0.2.1:0", "--data", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "admin password") {
		t.Fatalf("eventstore serve beyond loopback without a password: got %v, want a refusal naming the admin password", err)
	}

	url, stop := startEventstoreServe(t, "--tls-cert", cert, "--tls-key", key, "--tls-ca", cert, "--admin-password-file", pwPath)
	if !strings.Contains(url, "tls=true") || !strings.Contains(url, "tlsCAFile=") {
		t.Fatalf("printed URL %s, want tls=true and tlsCAFile", url)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	appendOne := func(url string) error {
		store, err := eventstore.Connect(cctx, url)
		if err != nil {
			return err
		}
		defer store.Close()
		_, err = store.Append(cctx, "tls-"+uuid.NewString(), eventstore.NoStream(), eventstore.EventData{Type: "Hello", Data: []byte(`{}`)})
		return err
	}
	for _, bad := range []string{url, strings.Replace(url, "esdb://", "esdb://admin:wrong@", 1)} {
		if err := appendOne(bad); err == nil {
			t.Errorf("append with %s succeeded, want it refused", bad)
		}
	}
	if err := appendOne(strings.Replace(url, "esdb://", "esdb://admin:s3cret@", 1)); err != nil {
		t.Fatalf("append with the admin password: %v", err)
	}
	stop()
}

// TestHelpHidesNATSEnvironment: credentials come from the environment as
// for the nats CLI, but --help never prints them.
func TestHelpHidesNATSEnvironment(t *testing.T) {
	t.Setenv("NATS_PASSWORD", "env-secret-pw")
	t.Setenv("NATS_URL", "nats://u:env-secret-url@127.0.0.1:1")
	for _, args := range [][]string{{"order", "place", "--help"}, {"stock", "add", "--help"}, {"serve", "--help"}} {
		var out, errOut strings.Builder
		_ = run(context.Background(), args, &out, &errOut)
		if all := out.String() + errOut.String(); strings.Contains(all, "env-secret") {
			t.Errorf("ordo %s printed a credential from the environment:\n%s", strings.Join(args, " "), all)
		}
	}
}
