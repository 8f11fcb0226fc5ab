package nats

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ordo-dev/ordo/domain"
)

// Roles a NATS user can hold in an auth file (see LoadAuthFile). Each is a
// set of subject permissions the embedded server enforces itself.
const (
	// RoleClient sends the order commands a shop or back office sends
	// (not payment reports, not the saga's or the timers' commands), reads
	// orders, outcomes and stock, and runs the queries.
	RoleClient = "client"
	// RolePayments only reports payments: PaymentCallback commands.
	RolePayments = "payments"
	// RoleOperator may do everything, stock add and the saga's commands included.
	RoleOperator = "operator"
	// RoleService is what an Ordo service needs for itself: the JetStream
	// API, the outcome bucket, the command stream, replies to any requester.
	RoleService = "service"
)

// clientCommands are the order commands RoleClient may send. Payments are
// reported by RolePayments (PaymentCallback) or recorded by an operator
// (ConfirmPayment, FailPayment); MarkStockReserved and MarkStockRejected
// are the saga's, ExpirePayment the payment timer's.
var clientCommands = []string{
	domain.CmdPlaceOrder, domain.CmdCancelOrder, domain.CmdShipOrder, domain.CmdConfirmDelivery,
	domain.CmdCompleteOrder, domain.CmdRequestRefund, domain.CmdCompleteRefund, domain.CmdRejectRefund,
}

// replyInboxes is where requesters receive replies: nats.go's request and
// JetStream acknowledgement inboxes, and the Go client's command replies.
const replyInboxes = "_INBOX.>"

// RolePermissions returns the subject permissions of a role, as the
// embedded server enforces them; an operator of an external NATS cluster
// can copy them into its configuration.
func RolePermissions(role string) (*server.Permissions, error) {
	switch role {
	case RoleClient:
		pub := make([]string, 0, len(clientCommands)+6)
		for _, c := range clientCommands {
			pub = append(pub, SubjectCommandPrefix+"*."+c)
		}
		pub = append(pub,
			SubjectOrderQuery+"*", SubjectQueryPrefix+">", SubjectStockPrefix+"*.get",
			// The outcome lookup (Client.Outcome): the bucket's info and its reads.
			"$JS.API.STREAM.INFO.KV_"+BucketOutcomes,
			"$JS.API.DIRECT.GET.KV_"+BucketOutcomes+".>",
			"$JS.API.STREAM.MSG.GET.KV_"+BucketOutcomes)
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: []string{replyInboxes}},
		}, nil
	case RolePayments:
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{SubjectCommandPrefix + "*." + domain.CmdPaymentCallback}},
			Subscribe: &server.SubjectPermission{Allow: []string{replyInboxes}},
		}, nil
	case RoleOperator, RoleService:
		// The service replies to whatever subject a requester names and
		// administers its streams: nothing narrower than everything works
		// for it. An operator may do anything by definition.
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}},
		}, nil
	}
	return nil, fmt.Errorf("unknown NATS role %q: use %s, %s, %s or %s", role, RoleClient, RolePayments, RoleOperator, RoleService)
}

// AuthUser is one user of an auth file: a user name with a bcrypt hash of
// its password, or an nkey (a public user key, U…), and a role.
type AuthUser struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"` // bcrypt hash: $2a$, $2b$ or $2y$
	Nkey     string `json:"nkey,omitempty"`
	Role     string `json:"role"`
}

// Auth is the embedded server's users (the --nats-auth file).
type Auth struct {
	Users []AuthUser `json:"users"`
}

// LoadAuthFile reads and checks an auth file:
//
//	{"users": [
//	  {"user": "shop", "password": "$2a$11$…", "role": "client"},
//	  {"nkey": "UDXU4RCS…", "role": "payments"}
//	]}
func LoadAuthFile(path string) (*Auth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("NATS auth file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a Auth
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("NATS auth file %s: %w (expected {\"users\":[{\"user\",\"password\",\"role\"} or {\"nkey\",\"role\"}]})", path, err)
	}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("NATS auth file %s: %w", path, err)
	}
	return &a, nil
}

func (a *Auth) check() error {
	if len(a.Users) == 0 {
		return errors.New("no users: every client would be refused")
	}
	seen := map[string]bool{}
	for i, u := range a.Users {
		if _, err := RolePermissions(u.Role); err != nil {
			return fmt.Errorf("user %d: %w", i+1, err)
		}
		switch {
		case u.Nkey != "" && (u.User != "" || u.Password != ""):
			return fmt.Errorf("user %d: give either user and password or nkey, not both", i+1)
		case u.Nkey != "":
			if !nkeys.IsValidPublicUserKey(u.Nkey) {
				return fmt.Errorf("user %d: nkey %q is not a public user key (U…; `nk -gen user -pubout` makes one)", i+1, u.Nkey)
			}
		case u.User == "":
			return fmt.Errorf("user %d: needs user and password, or nkey", i+1)
		case !isBcrypt(u.Password):
			return fmt.Errorf("user %q: password must be a bcrypt hash ($2a$…), not the password itself; make one with `nats server passwd` or `htpasswd -bnBC 11 \"\" PASSWORD | tr -d ':\\n'`", u.User)
		}
		key := u.User + "\x00" + u.Nkey
		if seen[key] {
			return fmt.Errorf("user %d: %s%s is listed twice", i+1, u.User, u.Nkey)
		}
		seen[key] = true
	}
	return nil
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// serviceUser is the embedded server's own user for the service in this
// process: an nkey made at start, never written anywhere, with RoleService.
type serviceUser struct {
	pub string
	kp  nkeys.KeyPair
}

func newServiceUser() (*serviceUser, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("create the service's NATS nkey: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return &serviceUser{pub: pub, kp: kp}, nil
}

// applyAuth puts the users of a (plus the service's own) into the server's
// options.
func applyAuth(opts *server.Options, a *Auth, svc *serviceUser) error {
	for _, u := range a.Users {
		perms, err := RolePermissions(u.Role)
		if err != nil {
			return err
		}
		if u.Nkey != "" {
			opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: u.Nkey, Permissions: perms})
		} else {
			opts.Users = append(opts.Users, &server.User{Username: u.User, Password: u.Password, Permissions: perms})
		}
	}
	perms, _ := RolePermissions(RoleService)
	opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: svc.pub, Permissions: perms})
	return nil
}

// ServiceOptions are the options for the service's own connection to the
// embedded server: in-process (never over TLS: it does not leave the
// process) and, when the server has users, as its service user.
func (e *EmbeddedServer) ServiceOptions() []natsgo.Option {
	opts := []natsgo.Option{
		natsgo.InProcessServer(e.s),
		// A tls:// URL would make the in-process connection do a handshake
		// for nothing; the server does not require one in-process.
		func(o *natsgo.Options) error {
			o.Servers = []string{"nats://" + e.s.Addr().String()}
			o.Url = ""
			return nil
		},
	}
	if e.svc != nil {
		kp := e.svc.kp
		opts = append(opts, natsgo.Nkey(e.svc.pub, func(nonce []byte) ([]byte, error) { return kp.Sign(nonce) }))
	}
	return opts
}

// isLoopback reports whether a listen host only accepts connections from
// this machine ("" and 0.0.0.0 listen on every interface).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrPermissionDenied matches the error of a publish or subscription the
// NATS server refused because the connection's user lacks the permission:
// a *CommandError with code permission_denied, whose message names the
// subject and the role to ask for (see the README's Security section for
// the roles). Retrying does not help; another user does.
var ErrPermissionDenied = domain.ErrPermissionDenied

// permissionError returns a permission_denied *CommandError when the
// server reported a permissions violation for a publish to subject on nc;
// nil otherwise. A publish the server refuses is dropped without an
// answer, so a sender would otherwise only time out.
func permissionError(nc *natsgo.Conn, subject string) error {
	if !violated(nc, "publish", subject) {
		return nil
	}
	return &CommandError{Code: string(domain.CodePermissionDenied), Message: fmt.Sprintf(
		"the NATS server refused to let this connection's user publish to %q: its role does not allow it; "+
			"ask for a user with the role %q (see the README's Security section)", subject, publishRole(subject))}
}

// subscribePermissionError is permissionError for a subscription to
// subject, the reply inbox of a client: without it no answer can arrive.
func subscribePermissionError(nc *natsgo.Conn, subject string) error {
	if !violated(nc, "subscription", subject) {
		return nil
	}
	return &CommandError{Code: string(domain.CodePermissionDenied), Message: fmt.Sprintf(
		"the NATS server refused to let this connection's user subscribe to %q, where replies arrive: its role does not allow it; "+
			"the roles %q and %q may subscribe only to %s (keep nats.go's default inbox prefix), "+
			"or ask for a user with the role %q (see the README's Security section)", subject, RoleClient, RolePayments, replyInboxes, RoleOperator)}
}

// violated reports whether nc's last error is the server's permissions
// violation for op ("publish" or "subscription") to subject.
func violated(nc *natsgo.Conn, op, subject string) bool {
	err := nc.LastError()
	return err != nil && errors.Is(err, natsgo.ErrPermissionViolation) &&
		strings.Contains(strings.ToLower(err.Error()), op+` to "`+strings.ToLower(subject)+`"`)
}

// publishRole is the least role that may publish to subject.
func publishRole(subject string) string {
	for _, role := range []string{RoleClient, RolePayments} {
		p, _ := RolePermissions(role)
		if slices.ContainsFunc(p.Publish.Allow, func(pattern string) bool { return subjectMatches(pattern, subject) }) {
			return role
		}
	}
	return RoleOperator
}

// subjectMatches is NATS's subject matching: * one token, > the rest.
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// reservedReplySubject reports whether a requester named one of the
// service's own namespaces as the subject to reply to: the service may
// publish there (the JetStream API, the outcome bucket, the command
// stream), so a reply would let any requester act with the service's
// permissions. Such replies are not sent.
func reservedReplySubject(subject string) bool {
	return strings.HasPrefix(subject, "$") || slices.ContainsFunc([]string{"ordo.", "_SYS."}, func(p string) bool {
		return strings.HasPrefix(subject, p)
	})
}

// configureSecurity applies cfg's users and TLS to the server's options.
// Listening beyond loopback without users is refused unless cfg.Insecure.
func configureSecurity(opts *server.Options, cfg EmbeddedConfig, host string) (*serviceUser, error) {
	if cfg.TLS != nil {
		opts.TLSConfig = cfg.TLS
		opts.TLS = true
		opts.TLSVerify = cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 5
	}
	if cfg.Auth == nil {
		if !isLoopback(host) && !cfg.Insecure {
			return nil, fmt.Errorf("embedded NATS: listening on %s, beyond this machine, needs users: give --nats-auth FILE (or --insecure to let anyone who reaches the port send any command)", cfg.Listen)
		}
		return nil, nil
	}
	svc, err := newServiceUser()
	if err != nil {
		return nil, err
	}
	if err := applyAuth(opts, cfg.Auth, svc); err != nil {
		return nil, err
	}
	return svc, nil
}

// Credentials are how a client authenticates to NATS, as the nats CLI
// takes them: a credentials file (JWT and seed, for clusters run with
// operator JWTs), an nkey seed file (for users listed by nkey in an auth
// file), or a user and password (also possible as user info in the URL,
// nats://user:password@host:4222). CAFile verifies the server's
// certificate (tls:// URLs); CertFile and KeyFile are a client certificate
// for servers that require one.
type Credentials struct {
	CredsFile string
	NkeyFile  string
	User      string
	Password  string
	CAFile    string
	CertFile  string
	KeyFile   string
}

// Options turns the credentials into nats.go connect options.
func (c Credentials) Options() ([]natsgo.Option, error) {
	var opts []natsgo.Option
	n := 0
	if c.CredsFile != "" {
		opts, n = append(opts, natsgo.UserCredentials(c.CredsFile)), n+1
	}
	if c.NkeyFile != "" {
		o, err := natsgo.NkeyOptionFromSeed(c.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("NATS nkey seed file %s: %w", c.NkeyFile, err)
		}
		opts, n = append(opts, o), n+1
	}
	if c.User != "" || c.Password != "" {
		opts, n = append(opts, natsgo.UserInfo(c.User, c.Password)), n+1
	}
	if n > 1 {
		return nil, errors.New("NATS credentials: give one of a credentials file, an nkey seed file, or a user and password")
	}
	if c.CAFile != "" {
		opts = append(opts, natsgo.RootCAs(c.CAFile))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("NATS client certificate: give both the certificate and its key")
	}
	if c.CertFile != "" {
		opts = append(opts, natsgo.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts, nil
}
