package nats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

// TestLoadAuthFile: an auth file with a mistake is refused with a message
// that says what to fix, never loaded half-way.
func TestLoadAuthFile(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	const hash = `$2a$11$ZXhhbXBsZWV4YW1wbGVleOQ7hZ3W2pN6YpQnq2Z1cXl1k2k5u8yZ2`
	tests := []struct {
		name, file, wantErr string
	}{
		{"valid", `{"users":[{"user":"shop","password":"` + hash + `","role":"client"},{"nkey":"` + pub + `","role":"payments"}]}`, ""},
		{"plain password", `{"users":[{"user":"shop","password":"secret","role":"client"}]}`, "bcrypt hash"},
		{"unknown role", `{"users":[{"user":"shop","password":"` + hash + `","role":"admin"}]}`, `unknown NATS role "admin"`},
		{"bad nkey", `{"users":[{"nkey":"SUAXXX","role":"client"}]}`, "not a public user key"},
		{"user and nkey", `{"users":[{"user":"x","password":"` + hash + `","nkey":"` + pub + `","role":"client"}]}`, "not both"},
		{"no users", `{"users":[]}`, "no users"},
		{"unknown field", `{"users":[{"user":"shop","pass":"x","role":"client"}]}`, "unknown field"},
		{"twice", `{"users":[{"user":"a","password":"` + hash + `","role":"client"},{"user":"a","password":"` + hash + `","role":"operator"}]}`, "listed twice"},
		{"nameless", `{"users":[{"password":"` + hash + `","role":"client"}]}`, "needs user and password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "auth.json")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := LoadAuthFile(path)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want it loaded", err)
			case tt.wantErr == "" && len(a.Users) != 2:
				t.Fatalf("got %d users, want 2", len(a.Users))
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestRolePermissions: the client role sends no payment, saga or timer
// command, the payments role only callbacks.
func TestRolePermissions(t *testing.T) {
	allows := func(role, subject string) bool {
		p, err := RolePermissions(role)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Publish.Allow {
			if subjectMatches(a, subject) {
				return true
			}
		}
		return false
	}
	order := "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a"
	tests := []struct {
		role, subject string
		want          bool
	}{
		{RoleClient, CommandSubject(order, "PlaceOrder"), true},
		{RoleClient, CommandSubject(order, "RequestRefund"), true},
		{RoleClient, CommandSubject(order, "MarkStockReserved"), false},
		{RoleClient, CommandSubject(order, "MarkStockRejected"), false},
		{RoleClient, CommandSubject(order, "ExpirePayment"), false},
		{RoleClient, CommandSubject(order, "ConfirmPayment"), false},
		{RoleClient, CommandSubject(order, "PaymentCallback"), false},
		{RoleClient, SubjectTimerPrefix + order, false},
		{RoleClient, SubjectStockPrefix + "sku-1.get", true},
		{RoleClient, SubjectStockPrefix + "sku-1.add", false},
		{RoleClient, SubjectStockPrefix + "sku-1.reserve", false},
		{RoleClient, SubjectQueryPrefix + "orders", true},
		{RoleClient, "$JS.API.STREAM.DELETE." + StreamCommands, false},
		{RolePayments, CommandSubject(order, "PaymentCallback"), true},
		{RolePayments, CommandSubject(order, "PlaceOrder"), false},
		{RolePayments, SubjectQueryPrefix + "orders", false},
		{RoleOperator, SubjectStockPrefix + "sku-1.add", true},
		{RoleService, "$JS.API.STREAM.CREATE." + StreamCommands, true},
	}
	for _, tt := range tests {
		if got := allows(tt.role, tt.subject); got != tt.want {
			t.Errorf("%s publishing %s: got %v, want %v", tt.role, tt.subject, got, tt.want)
		}
	}
}

func TestReservedReplySubject(t *testing.T) {
	for subject, want := range map[string]bool{
		"_INBOX.abc.1":                        false,
		"reply.demo":                          false,
		"$KV.ORDO_OUTCOMES.x":                 true,
		"$JS.API.STREAM.DELETE.ORDO_COMMANDS": true,
		"ordo.cmd.order.x.MarkStockReserved":  true,
		"_SYS.x":                              true,
	} {
		if got := reservedReplySubject(subject); got != want {
			t.Errorf("reservedReplySubject(%q) = %v, want %v", subject, got, want)
		}
	}
}

func TestCredentialsOptions(t *testing.T) {
	if _, err := (Credentials{User: "a", Password: "b", CredsFile: "x.creds"}).Options(); err == nil {
		t.Error("a user and a credentials file together were accepted")
	}
	if _, err := (Credentials{CertFile: "c.pem"}).Options(); err == nil {
		t.Error("a client certificate without its key was accepted")
	}
	if _, err := (Credentials{NkeyFile: filepath.Join(t.TempDir(), "missing.nk")}).Options(); err == nil {
		t.Error("a missing nkey seed file was accepted")
	}
	if opts, err := (Credentials{User: "a", Password: "b", CAFile: "ca.pem"}).Options(); err != nil || len(opts) != 2 {
		t.Errorf("user, password and CA: got %d options, %v; want 2", len(opts), err)
	}
}

// TestPublishRole: a refusal names the least role that may send the
// subject, so the user knows whom to ask for what.
func TestPublishRole(t *testing.T) {
	order := "0b6f7c1e-3f4a-4a53-9a7e-2f1f5d0c9b1a"
	tests := []struct{ subject, want string }{
		{CommandSubject(order, "PlaceOrder"), RoleClient},
		{CommandSubject(order, "PaymentCallback"), RolePayments},
		{CommandSubject(order, "ConfirmPayment"), RoleOperator},
		{CommandSubject(order, "MarkStockReserved"), RoleOperator},
		{SubjectStockPrefix + "sku-1.get", RoleClient},
		{SubjectStockPrefix + "sku-1.add", RoleOperator},
	}
	for _, tt := range tests {
		if got := publishRole(tt.subject); got != tt.want {
			t.Errorf("publishRole(%q): got %q, want %q", tt.subject, got, tt.want)
		}
	}
}
