package serve

import (
	"crypto/tls"
	"net"

	natsgo "github.com/nats-io/nats.go"

	"github.com/ordo-dev/ordo/eventstore"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// Security is who may reach the service's parts, and how: the embedded
// NATS server's users, TLS on every listener, the embedded event store's
// credentials. The zero value is the loopback default: no users, no TLS,
// and listening beyond loopback is refused.
type Security struct {
	// NATSAuth lists the embedded NATS server's users and their roles
	// (nats.LoadAuthFile); the service connects as a user of its own.
	NATSAuth *ordonats.Auth
	// NATSConnect are the service's credentials (and CA) for an external
	// NATS (Config.NATSURL): nats.Credentials.Options.
	NATSConnect []natsgo.Option
	// TLS, when set, is served on the HTTP listener, the embedded NATS
	// server and the embedded event store's gRPC listener.
	TLS *tls.Config
	// TLSCAFile is the CA clients verify the certificate with; it goes into
	// the event store's URL (tlsCAFile), which the operator tools use.
	TLSCAFile string
	// ESDBAuth checks the credentials of the embedded event store's gRPC
	// callers; required when it listens beyond loopback.
	ESDBAuth *esdbserver.Auth
	// Insecure allows listening beyond loopback without users or TLS.
	Insecure bool
}

func (sec Security) embeddedNATS(cfg ordonats.EmbeddedConfig) ordonats.EmbeddedConfig {
	cfg.Auth, cfg.TLS, cfg.Insecure = sec.NATSAuth, sec.TLS, sec.Insecure
	return cfg
}

func (sec Security) embeddedStore(cfg eventstore.EmbeddedConfig) eventstore.EmbeddedConfig {
	cfg.TLS, cfg.TLSCAFile, cfg.Auth, cfg.Insecure = sec.TLS, sec.TLSCAFile, sec.ESDBAuth, sec.Insecure
	return cfg
}

// httpListener serves HTTPS on lis when TLS is configured (HTTP/1.1).
func (sec Security) httpListener(lis net.Listener) net.Listener {
	if sec.TLS == nil {
		return lis
	}
	t := sec.TLS.Clone()
	t.NextProtos = []string{"http/1.1"}
	return tls.NewListener(lis, t)
}
