package flagset

import (
	"flag"
	"os"

	ordonats "github.com/ordo-dev/ordo/nats"
)

// NATSCredentials are the NATS credential flags of a client command (ordo
// order, ordo stock, ordo serve with --nats-url, ordo-bench), named as the
// nats CLI names them and taken from the same environment variables when
// the flag is not given (NATS_CREDS, NATS_NKEY, NATS_USER, NATS_PASSWORD,
// NATS_CA, NATS_CERT, NATS_KEY). The environment is read after parsing, by
// Credentials, so that --help never prints a password. User info in the
// URL (nats://user:password@host:4222) works too.
type NATSCredentials struct {
	creds, nkey, user, password, ca, cert, key *string
}

// AddNATSCredentials defines the credential flags on fs.
func AddNATSCredentials(fs *flag.FlagSet) NATSCredentials {
	return NATSCredentials{
		creds:    fs.String("nats-creds", "", "NATS credentials file (JWT and seed), for clusters run with operator JWTs (default $NATS_CREDS)"),
		nkey:     fs.String("nats-nkey", "", "NATS nkey seed file, for a user listed by nkey in the server's users (default $NATS_NKEY)"),
		user:     fs.String("nats-user", "", "NATS user name (default $NATS_USER)"),
		password: fs.String("nats-password", "", "NATS password (default $NATS_PASSWORD)"),
		ca:       fs.String("nats-ca", "", "CA file to verify the NATS server's certificate, for tls:// URLs (default $NATS_CA)"),
		cert:     fs.String("nats-cert", "", "client certificate for a NATS server that requires one (default $NATS_CERT)"),
		key:      fs.String("nats-key", "", "key of --nats-cert (default $NATS_KEY)"),
	}
}

// Credentials are the parsed flags, each falling back to its environment
// variable; turn them into connect options with their Options method.
func (f NATSCredentials) Credentials() ordonats.Credentials {
	or := func(flagValue, env string) string {
		if flagValue != "" {
			return flagValue
		}
		return os.Getenv(env)
	}
	return ordonats.Credentials{CredsFile: or(*f.creds, "NATS_CREDS"), NkeyFile: or(*f.nkey, "NATS_NKEY"),
		User: or(*f.user, "NATS_USER"), Password: or(*f.password, "NATS_PASSWORD"),
		CAFile: or(*f.ca, "NATS_CA"), CertFile: or(*f.cert, "NATS_CERT"), KeyFile: or(*f.key, "NATS_KEY")}
}
