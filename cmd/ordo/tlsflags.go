package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// natsURL is the --nats-url given, else NATS_URL as for the nats CLI, else
// the local service.
func natsURL(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// tlsServerFlags are a listener's certificate and, optionally, the CA its
// clients' certificates must be signed by.
type tlsServerFlags struct {
	cert, key, clientCA, ca *string
}

func addTLSServerFlags(fs *flag.FlagSet, what string) tlsServerFlags {
	return tlsServerFlags{
		cert:     fs.String("tls-cert", "", "certificate file (PEM) to serve TLS on "+what),
		key:      fs.String("tls-key", "", "key file (PEM) of --tls-cert"),
		clientCA: fs.String("tls-client-ca", "", "CA file (PEM): clients must present a certificate signed by it (mutual TLS)"),
		ca:       fs.String("tls-ca", "", "CA file (PEM) clients verify --tls-cert with; it goes into the event store URL the operator tools use (tlsCAFile)"),
	}
}

// config loads the certificate; nil when no TLS was asked for.
func (f tlsServerFlags) config() (*tls.Config, error) {
	if *f.cert == "" && *f.key == "" {
		if *f.clientCA != "" {
			return nil, usageError{"--tls-client-ca needs --tls-cert and --tls-key"}
		}
		return nil, nil
	}
	if *f.cert == "" || *f.key == "" {
		return nil, usageError{"TLS needs both --tls-cert and --tls-key"}
	}
	cert, err := tls.LoadX509KeyPair(*f.cert, *f.key)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", *f.cert, *f.key, err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if *f.clientCA != "" {
		pem, err := os.ReadFile(*f.clientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s holds no PEM certificate", *f.clientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// adminPassword is the embedded event store's admin password: from a file
// (its first line), else ORDO_ESDB_ADMIN_PASSWORD; "" when neither is set.
func adminPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("admin password file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimRight(pw, "\r")
		if pw == "" {
			return "", fmt.Errorf("admin password file %s is empty", file)
		}
		return pw, nil
	}
	return os.Getenv("ORDO_ESDB_ADMIN_PASSWORD"), nil
}

// securityFlags are `ordo serve`'s: NATS users, TLS, the event store's
// admin password, the service's own NATS credentials for --nats-url.
type securityFlags struct {
	natsAuth, adminPasswordFile *string
	insecure                    *bool
	tls                         tlsServerFlags
	natsCreds                   flagset.NATSCredentials
}

func addSecurityFlags(fs *flag.FlagSet) securityFlags {
	return securityFlags{
		natsAuth:          fs.String("nats-auth", "", "JSON file of the embedded NATS server's users and roles (see README, Security); required to listen beyond loopback"),
		adminPasswordFile: fs.String("esdb-admin-password-file", "", "file holding the embedded event store's admin password (or env ORDO_ESDB_ADMIN_PASSWORD); required to listen beyond loopback"),
		insecure:          fs.Bool("insecure", false, "allow listening beyond loopback without NATS users, event store password or TLS"),
		tls:               addTLSServerFlags(fs, "the HTTP listener, the embedded NATS server and the embedded event store"),
		natsCreds:         flagset.AddNATSCredentials(fs),
	}
}

func (f securityFlags) security() (serve.Security, error) {
	var sec serve.Security
	var err error
	if *f.natsAuth != "" {
		if sec.NATSAuth, err = ordonats.LoadAuthFile(*f.natsAuth); err != nil {
			return sec, err
		}
	}
	if sec.TLS, err = f.tls.config(); err != nil {
		return sec, err
	}
	sec.TLSCAFile, sec.Insecure = *f.tls.ca, *f.insecure
	pw, err := adminPassword(*f.adminPasswordFile)
	if err != nil {
		return sec, err
	}
	if pw != "" {
		sec.ESDBAuth = &esdbserver.Auth{AdminPassword: pw, Required: true}
	}
	if sec.NATSConnect, err = f.natsCreds.Credentials().Options(); err != nil {
		return sec, usageError{err.Error()}
	}
	return sec, nil
}
