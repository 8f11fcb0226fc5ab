package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ordo-dev/ordo/callbacksig"
	"github.com/ordo-dev/ordo/cmd/flagset"
	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// callbackSecretEnv holds a payment callback secret for `ordo payment
// callback`, instead of the secrets directory.
const callbackSecretEnv = "ORDO_CALLBACK_SECRET"

// runPayment runs `ordo payment callback`: a payment provider's callback,
// signed with the service's callback secret, sent as a PaymentCallback
// command (the one path POST /v1/payments/callback takes too).
func runPayment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "callback" {
		fmt.Fprintln(stderr, "Usage: ordo payment callback ORDER_ID --payment-id ID --amount MINOR --currency CODE [--status succeeded|failed] [--provider NAME] [flags]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return errHelp
		}
		return usageError{"payment needs the verb callback"}
	}
	fs := flag.NewFlagSet("ordo payment callback", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cb domain.PaymentCallback
	fs.StringVar(&cb.PaymentID, "payment-id", "", "the provider's payment ID (the idempotency key)")
	fs.Int64Var(&cb.Amount, "amount", 0, "amount in minor units (cents)")
	fs.StringVar(&cb.Currency, "currency", "", "ISO 4217 currency, e.g. EUR")
	fs.StringVar(&cb.Status, "status", domain.PaymentStatusSucceeded, "succeeded or failed")
	fs.StringVar(&cb.Provider, "provider", "", "payment provider (chooses the secret callback-<provider>, else callback-default)")
	fs.StringVar(&cb.Reason, "reason", "", "why the payment failed")
	data := fs.String("data", "./ordo-data", "the service's data directory, whose secrets/ holds the callback secrets")
	secrets := fs.String("secrets", "", "the service's secrets directory (default: <data>/secrets)")
	secretFile := fs.String("secret-file", "", "a file with the callback secret (one per line), instead of the secrets directory or $"+callbackSecretEnv)
	cf := clientFlags{
		natsURL: fs.String("nats-url", "", "NATS server of the Ordo service, nats://[user:password@]host:port or tls://… (default $NATS_URL, else nats://127.0.0.1:4222)"),
		creds:   flagset.AddNATSCredentials(fs),
		asJSON:  fs.Bool("json", false, "print the reply as JSON"),
		timeout: fs.Duration("timeout", 10*time.Second, "how long to wait for the outcome"),
	}
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ordo payment callback ORDER_ID --payment-id ID --amount MINOR --currency CODE [--status succeeded|failed] [--provider NAME]")
		fmt.Fprintln(fs.Output(), "\nSends a payment provider's callback, signed (Ordo-Signature) with the callback secret:")
		fmt.Fprintln(fs.Output(), "--secret-file, else $"+callbackSecretEnv+", else the service's secrets directory (callback-<provider>, else")
		fmt.Fprintln(fs.Output(), "callback-default, which `ordo serve` generates at its first start). A resend is answered with the first outcome.")
		fmt.Fprintln(fs.Output(), "\nExample:\n  ordo payment callback $id --payment-id pi_3Nf --amount 2500 --currency EUR --provider stripe")
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{fmt.Sprintf("payment callback needs exactly one ORDER_ID, got %d arguments", len(pos))}
	}
	cb.Order = canonicalOrderArg(pos[0])
	if err := cb.Validate(); err != nil {
		return usageError{err.Error()}
	}
	keys, err := callbackKeys(*secretFile, *secrets, *data, cb.Provider, os.Getenv)
	if err != nil {
		return err
	}
	client, ctx, done, err := cf.dialWith(ctx, ordonats.ClientOptions{CallbackSigner: callbacksig.Signer{Keys: keys}})
	if err != nil {
		return printOutcome(stdout, ordonats.Outcome{}, err, *cf.asJSON, false)
	}
	defer done()
	out, err := client.PaymentCallback(ctx, cb)
	return printOutcome(stdout, out, err, *cf.asJSON, false)
}

// callbackKeys finds the secrets to sign with: a file given, the
// environment, or the service's secrets directory.
func callbackKeys(file, dir, data, provider string, getenv func(string) string) (*callbacksig.Keyring, error) {
	if file != "" {
		s, err := callbacksig.ReadFile(file)
		if err != nil {
			return nil, err
		}
		return callbacksig.NewKeyring(map[string][][]byte{provider: s}), nil
	}
	if env := strings.TrimSpace(getenv(callbackSecretEnv)); env != "" {
		return callbacksig.NewKeyring(map[string][][]byte{provider: callbacksig.Parse([]byte(env))}), nil
	}
	if dir == "" {
		dir = serve.SecretsDir(data)
	}
	keys, err := callbacksig.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w; give the service's callback secret with --secret-file, $%s, or --data/--secrets", err, callbackSecretEnv)
	}
	if len(keys.Secrets(provider)) == 0 {
		return nil, fmt.Errorf("no callback secret for provider %q in %s (callback-%s or callback-%s); give it with --secret-file or $%s",
			provider, dir, provider, callbacksig.DefaultProvider, callbackSecretEnv)
	}
	return keys, nil
}
