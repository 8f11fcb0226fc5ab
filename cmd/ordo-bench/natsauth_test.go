package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// TestBenchWithNATSUsers: against a service whose NATS admits only its
// users, the bench connects with the ordo CLI's credential flags and NATS_*
// variables; without credentials it is refused, and a user whose role may
// not send the bench's commands gets permission_denied, not a run of errors.
func TestBenchWithNATSUsers(t *testing.T) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	auth := &ordonats.Auth{Users: []ordonats.AuthUser{
		{User: "ops", Password: hash("ops-pw"), Role: ordonats.RoleOperator},
		{User: "shop", Password: hash("shop-pw"), Role: ordonats.RoleClient},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := serve.Start(ctx, serve.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", ESDBListen: "127.0.0.1:0",
		ManualStock: true, Security: serve.Security{NATSAuth: auth}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	url := svc.NATSURL()

	bench := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut strings.Builder
		err := run(ctx, args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	// Flags.
	out, err := bench("lifecycle", "--clients", "2", "--duration", "300ms", "--json", "--nats-url", url, "--nats-user", "ops", "--nats-password", "ops-pw")
	if err != nil {
		t.Fatalf("lifecycle as operator: %v\n%s", err, out)
	}
	var res struct {
		Lifecycle struct{ Ops, Errors int } `json:"lifecycle"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Lifecycle.Ops == 0 || res.Lifecycle.Errors != 0 {
		t.Fatalf("lifecycle as operator: got %+v (%v), want operations without errors\n%s", res, err, out)
	}
	// No credentials: the server refuses the connection.
	if out, err := bench("lifecycle", "--clients", "1", "--duration", "100ms", "--nats-url", url); err == nil || !strings.Contains(err.Error(), "Authorization") {
		t.Fatalf("lifecycle without credentials: got %v, want an authorization violation\n%s", err, out)
	}
	// The environment, as for the ordo CLI and the nats CLI.
	t.Setenv("NATS_USER", "ops")
	t.Setenv("NATS_PASSWORD", "ops-pw")
	if out, err := bench("hot-sku", "--clients", "2", "--duration", "1s", "--orders", "50", "--compare=false", "--json",
		"--nats-url", url, "--esdb-url", svc.ESDBURL()); err != nil {
		t.Fatalf("hot-sku as operator from NATS_USER/NATS_PASSWORD: %v\n%s", err, out)
	}
	// A client may not add stock: refused as such, at once.
	t.Setenv("NATS_USER", "shop")
	t.Setenv("NATS_PASSWORD", "shop-pw")
	if out, err := bench("hot-sku", "--clients", "1", "--duration", "1s", "--orders", "10", "--compare=false",
		"--nats-url", url, "--esdb-url", svc.ESDBURL()); err == nil || !strings.Contains(err.Error(), "permission_denied") {
		t.Fatalf("hot-sku as client: got %v, want permission_denied\n%s", err, out)
	}
}
