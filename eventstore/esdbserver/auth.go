package esdbserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// AdminUser is the one user the store knows, as in EventStoreDB.
const AdminUser = "admin"

// DefaultAdminPassword is EventStoreDB's default admin password; the store
// accepts it only while it listens on loopback.
const DefaultAdminPassword = "changeit"

// Auth is who may use the store: EventStoreDB's basic authentication, the
// `authorization: Basic …` metadata its clients send (the official clients
// send it only over TLS).
type Auth struct {
	// AdminPassword is the password of AdminUser (default DefaultAdminPassword).
	AdminPassword string
	// Required refuses calls without credentials; otherwise such calls are
	// served (as an insecure EventStoreDB on loopback would) and only
	// credentials that are given are checked.
	Required bool
}

// CheckListen refuses what would expose the store beyond this machine
// without protection: a non-loopback listen address needs an admin
// password the operator set (not the default) and TLS, unless insecure.
func CheckListen(listen string, a *Auth, tlsOn, insecure bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("event store listen address %q: %w", listen, err)
	}
	if isLoopback(host) || insecure {
		return nil
	}
	switch {
	case a == nil || a.AdminPassword == "" || a.AdminPassword == DefaultAdminPassword:
		return fmt.Errorf("the event store listens on %s, beyond this machine: set the admin password (ordo serve --esdb-admin-password-file, ordo eventstore serve --admin-password-file, or env ORDO_ESDB_ADMIN_PASSWORD; not %q), or pass --insecure", listen, DefaultAdminPassword)
	case !tlsOn:
		return fmt.Errorf("the event store listens on %s, beyond this machine: give --tls-cert and --tls-key (EventStoreDB clients send credentials only over TLS), or pass --insecure", listen)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// anonymousServices answer without credentials, as in EventStoreDB: the
// clients call them to discover the node before anything else.
var anonymousServices = []string{
	"/event_store.client.server_features.ServerFeatures/",
	"/event_store.client.gossip.Gossip/",
}

// authenticator checks each call's credentials.
type authenticator struct {
	want     [sha256.Size]byte // of "admin:password"
	required bool
}

func newAuthenticator(a Auth) *authenticator {
	if a.AdminPassword == "" {
		a.AdminPassword = DefaultAdminPassword
	}
	return &authenticator{want: sha256.Sum256([]byte(AdminUser + ":" + a.AdminPassword)), required: a.Required}
}

var errNoCredentials = errors.New("no credentials")

// check returns nil when the call may proceed, else an Unauthenticated status.
func (au *authenticator) check(ctx context.Context, method string) error {
	for _, p := range anonymousServices {
		if strings.HasPrefix(method, p) {
			return nil
		}
	}
	err := au.credentials(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoCredentials) && !au.required:
		return nil
	case errors.Is(err, errNoCredentials):
		return status.Error(codes.Unauthenticated, "credentials required: connect with esdb://admin:PASSWORD@host:port?tls=true (the clients send credentials only over TLS)")
	}
	return status.Error(codes.Unauthenticated, err.Error())
}

// credentials compares the call's basic credentials, in constant time.
func (au *authenticator) credentials(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return errNoCredentials
	}
	enc, ok := strings.CutPrefix(vals[0], "Basic ")
	if !ok {
		return errors.New("unsupported authorization scheme: use basic credentials (esdb://user:password@host)")
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return errors.New("malformed basic credentials")
	}
	got := sha256.Sum256(raw)
	if subtle.ConstantTimeCompare(got[:], au.want[:]) != 1 {
		return errors.New("wrong user name or password")
	}
	return nil
}

func (au *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := au.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (au *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := au.check(ss.Context(), info.FullMethod); err != nil {
		drainRefused(ss, info)
		return err
	}
	return h(srv, ss)
}

// refusedDrainLimit bounds what drainRefused reads of a refused call.
const (
	refusedDrainMessages = 1024
	refusedDrainTime     = 5 * time.Second
)

// discardMsg is a message read only to be dropped (see passThroughCodec).
type discardMsg struct{}

// drainRefused reads what the client of a refused stream sends before it
// looks for the answer: its first message and, for a client stream (an
// append: header, events, end), everything up to its end. Ending the call
// earlier makes the client's send fail with a bare EOF (the Go client then
// reports an unknown error instead of Unauthenticated). Bounded in
// messages and time, since the caller is unknown.
func drainRefused(ss grpc.ServerStream, info *grpc.StreamServerInfo) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < refusedDrainMessages; i++ {
			if ss.RecvMsg(&discardMsg{}) != nil || (i == 0 && info.IsServerStream) {
				return
			}
		}
	}()
	t := time.NewTimer(refusedDrainTime)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// securityOptions are the gRPC server options for cfg's authentication:
// beyond loopback credentials are always required.
func securityOptions(cfg Config) []grpc.ServerOption {
	if cfg.Auth == nil {
		return nil
	}
	a := *cfg.Auth
	if host, _, _ := net.SplitHostPort(cfg.Listen); !isLoopback(host) {
		a.Required = true
	}
	au := newAuthenticator(a)
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(au.unary), grpc.ChainStreamInterceptor(au.stream)}
}

// tlsListener wraps lis in TLS when cfg asks for it. gRPC clients insist
// on ALPN "h2"; HTTP/1.1 stays possible for the port's HTTP answers.
func tlsListener(lis net.Listener, cfg Config) net.Listener {
	if cfg.TLS == nil {
		return lis
	}
	t := cfg.TLS.Clone()
	t.NextProtos = []string{"h2", "http/1.1"}
	return tls.NewListener(lis, t)
}
