package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
	"github.com/ordo-dev/ordo/domain"
	"github.com/ordo-dev/ordo/eventstore/esdbserver"
	"github.com/ordo-dev/ordo/eventstore/esdbtest"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// startService starts the service on cfg without connecting to it.
func startService(tb testing.TB, cfg serve.Config) *serve.Service {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := serve.Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("start the service: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return svc
}

// natsUser connects to url with opts and returns a client; errs receives
// the errors the server reports asynchronously (permission violations).
func natsUser(tb testing.TB, url string, opts ...natsgo.Option) (*ordonats.Client, *natsgo.Conn, chan error) {
	tb.Helper()
	errs := make(chan error, 16)
	opts = append(opts, natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := natsgo.Connect(url, opts...)
	if err != nil {
		tb.Fatalf("connect to %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	c, err := ordonats.NewClient(nc, ordonats.ClientOptions{Timeout: 20 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, nc, errs
}

// authFile writes an auth file with a client user "shop", an operator
// "ops" (passwords as bcrypt hashes) and a payments user by nkey, whose
// seed file it returns.
func authFile(tb testing.TB, dir string) (path, paymentsSeed string) {
	tb.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		return string(h)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		tb.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	paymentsSeed = filepath.Join(dir, "payments.nk")
	if err := os.WriteFile(paymentsSeed, seed, 0o600); err != nil {
		tb.Fatal(err)
	}
	users := fmt.Sprintf(`{"users":[
  {"user":"shop","password":%q,"role":"client"},
  {"user":"ops","password":%q,"role":"operator"},
  {"nkey":%q,"role":"payments"}]}`, hash("shop-pw"), hash("ops-pw"), pub)
	path = filepath.Join(dir, "nats-auth.json")
	if err := os.WriteFile(path, []byte(users), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path, paymentsSeed
}

// TestNATSRolesAreEnforced: with --nats-auth, the embedded NATS server
// admits only its users, each with its role's subjects. A command a user's
// role does not allow is refused by the server (a permissions violation)
// and never reaches the command stream, so nothing is stored; a client
// places orders, a payments user only reports payments, an operator may do
// everything.
func TestNATSRolesAreEnforced(t *testing.T) {
	if os.Getenv("ORDO_NATS_URL") != "" {
		t.Skip("the users are those of the embedded NATS server")
	}
	dir := t.TempDir()
	path, seed := authFile(t, t.TempDir())
	auth, err := ordonats.LoadAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(t, dir)
	cfg.Security.NATSAuth = auth
	svc := startService(t, cfg)
	ctx := ctxT(t)

	if nc, err := natsgo.Connect(svc.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("a connection without credentials was admitted")
	} else if !errors.Is(err, natsgo.ErrAuthorization) {
		t.Fatalf("a connection without credentials: got %v, want an authorization violation", err)
	}
	if nc, err := natsgo.Connect(svc.NATSURL(), natsgo.UserInfo("shop", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was admitted")
	}

	shop, _, shopErrs := natsUser(t, svc.NATSURL(), natsgo.UserInfo("shop", "shop-pw"))
	ops, opsNC, _ := natsUser(t, svc.NATSURL(), natsgo.UserInfo("ops", "ops-pw"))
	nkeyOpt, err := natsgo.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	psp, pspNC, _ := natsUser(t, svc.NATSURL(), nkeyOpt)

	id := uuid.NewString()
	if out, err := shop.PlaceOrder(ctx, placeCmd(id)); err != nil || out.State != string(domain.StatePlaced) {
		t.Fatalf("client places an order: got %+v, %v; want it placed", out, err)
	}
	// The client may not record the saga's decision, nor payments, nor add stock.
	// A refused publish gets no answer: the client learns of the refusal
	// from the server's error report once its wait for an answer ends.
	// The refusal has its own code, permission_denied (not unavailable,
	// which would invite retrying forever), and names the subject and the
	// role that may send it.
	other := uuid.NewString()
	refused := []struct {
		name, subject, role string
		send                func(ctx context.Context) error
	}{
		{"client MarkStockReserved", ordonats.CommandSubject(id, domain.CmdMarkStockReserved), ordonats.RoleOperator, func(ctx context.Context) error {
			_, err := shop.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id})
			return err
		}},
		{"client ConfirmPayment", ordonats.CommandSubject(id, domain.CmdConfirmPayment), ordonats.RoleOperator, func(ctx context.Context) error {
			_, err := shop.ConfirmPayment(ctx, domain.ConfirmPayment{Order: id, PaymentID: "p-1", Amount: total})
			return err
		}},
		{"client PaymentCallback", ordonats.CommandSubject(id, domain.CmdPaymentCallback), ordonats.RolePayments, func(ctx context.Context) error {
			_, err := shop.Send(ctx, ordonats.Command{Type: domain.CmdPaymentCallback, OrderID: id, Body: []byte(`{}`)})
			return err
		}},
		{"client stock add", ordonats.SubjectStockPrefix + "sku-1.add", ordonats.RoleOperator, func(ctx context.Context) error {
			_, err := shop.AddStock(ctx, "sku-1", 5, "")
			return err
		}},
		{"payments PlaceOrder", ordonats.CommandSubject(other, domain.CmdPlaceOrder), ordonats.RoleClient, func(ctx context.Context) error {
			_, err := psp.PlaceOrder(ctx, placeCmd(other))
			return err
		}},
		{"payments CancelOrder", ordonats.CommandSubject(id, domain.CmdCancelOrder), ordonats.RoleClient, func(ctx context.Context) error {
			_, err := psp.CancelOrder(ctx, domain.CancelOrder{Order: id, Reason: "x"})
			return err
		}},
		{"payments order get", ordonats.SubjectOrderQuery + id, ordonats.RoleClient, func(ctx context.Context) error {
			_, err := psp.GetOrder(ctx, id)
			return err
		}},
	}
	for _, r := range refused {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.send(sctx)
		cancel()
		var ce *ordonats.CommandError
		switch {
		case !errors.Is(err, ordonats.ErrPermissionDenied) || !errors.As(err, &ce):
			t.Errorf("%s: got %v, want %v", r.name, err, ordonats.ErrPermissionDenied)
		case ce.Code != string(domain.CodePermissionDenied) || domain.HTTPStatus(domain.Code(ce.Code)) != 403:
			t.Errorf("%s: got code %q, want %q (403)", r.name, ce.Code, domain.CodePermissionDenied)
		case !strings.Contains(ce.Message, `"`+r.subject+`"`) || !strings.Contains(ce.Message, `role "`+r.role+`"`):
			t.Errorf("%s: got message %q, want it to name the subject %q and the role %q", r.name, ce.Message, r.subject, r.role)
		}
	}
	// A client whose replies arrive where its role may not subscribe (a
	// custom inbox prefix) is refused at once, not left waiting for
	// answers that cannot arrive.
	custom, err := natsgo.Connect(svc.NATSURL(), natsgo.UserInfo("shop", "shop-pw"), natsgo.CustomInboxPrefix("shop.replies"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(custom.Close)
	var ce *ordonats.CommandError
	if c, err := ordonats.NewClient(custom, ordonats.ClientOptions{}); err == nil {
		c.Close()
		t.Error("a client whose reply inbox its role may not subscribe to was made, want permission_denied")
	} else if !errors.As(err, &ce) || ce.Code != string(domain.CodePermissionDenied) ||
		!strings.Contains(ce.Message, `"shop.replies.`) || !strings.Contains(ce.Message, `"`+ordonats.RoleOperator+`"`) {
		t.Errorf("a client with a reply inbox its role may not subscribe to: got %v, want permission_denied naming the inbox and a role", err)
	}
	select {
	case err := <-shopErrs:
		if !errors.Is(err, natsgo.ErrPermissionViolation) {
			t.Errorf("the server reported %v to the client, want a permissions violation", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("the server reported no permissions violation to the client")
	}
	// Nothing of the refused commands reached the stream or the store.
	js, _ := jetstream.New(opsNC)
	stream, err := js.Stream(ctx, ordonats.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{domain.CmdMarkStockReserved, domain.CmdConfirmPayment, domain.CmdCancelOrder} {
		if m, err := stream.GetLastMsgForSubject(ctx, ordonats.CommandSubject(id, typ)); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("refused %s: the command stream holds %v (%v)", typ, m, err)
		}
	}
	if got := eventTypesOf(t, &system{svc: svc}, id); strings.Join(got, ",") != domain.EvtOrderPlaced {
		t.Fatalf("after the refused commands the order holds %v, want only %s", got, domain.EvtOrderPlaced)
	}

	// The operator records the stock; the payments user's callback passes
	// NATS and reaches the workers, which answer it.
	if _, err := ops.MarkStockReserved(ctx, domain.MarkStockReserved{Order: id}); err != nil {
		t.Fatalf("operator MarkStockReserved: %v", err)
	}
	inbox := pspNC.NewInbox()
	replies, err := pspNC.SubscribeSync(inbox)
	if err != nil {
		t.Fatalf("payments user subscribes its inbox: %v", err)
	}
	cb, _ := json.Marshal(domain.PaymentCallback{Order: id, PaymentID: "pi-1", Amount: total, Currency: "EUR",
		Status: domain.PaymentStatusSucceeded, Provider: "stripe"})
	m := natsgo.NewMsg(ordonats.CommandSubject(id, domain.CmdPaymentCallback))
	m.Data = cb
	m.Header.Set(ordonats.HeaderMsgID, uuid.NewString())
	m.Header.Set(ordonats.HeaderCommandID, uuid.NewString())
	m.Header.Set(ordonats.HeaderReplyTo, inbox)
	pspJS, _ := jetstream.New(pspNC)
	if _, err := pspJS.PublishMsg(ctx, m); err != nil {
		t.Fatalf("payments user publishes PaymentCallback: %v", err)
	}
	if _, err := replies.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("payments user's PaymentCallback got no answer from the workers: %v", err)
	}
	if _, err := ops.AddStock(ctx, "sku-sec", 5, ""); err != nil {
		t.Fatalf("operator stock add: %v", err)
	}
}

// TestRepliesToServiceSubjectsAreNotSent: a requester names where the
// outcome goes (Ordo-Reply-To). The service may publish to the JetStream
// API and the outcome bucket; were it to reply there, a client could
// write another command's outcome or delete a stream with the service's
// permissions. Such a command is executed, its reply is not sent.
func TestRepliesToServiceSubjectsAreNotSent(t *testing.T) {
	if os.Getenv("ORDO_NATS_URL") != "" {
		t.Skip("the users are those of the embedded NATS server")
	}
	path, _ := authFile(t, t.TempDir())
	auth, err := ordonats.LoadAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(t, t.TempDir())
	cfg.Security.NATSAuth = auth
	svc := startService(t, cfg)
	ctx := ctxT(t)
	_, shopNC, _ := natsUser(t, svc.NATSURL(), natsgo.UserInfo("shop", "shop-pw"))
	ops, _, _ := natsUser(t, svc.NATSURL(), natsgo.UserInfo("ops", "ops-pw"))

	victim := "victim-" + uuid.NewString()
	id, commandID := uuid.NewString(), "place-"+uuid.NewString()
	body, _ := json.Marshal(placeCmd(id))
	m := natsgo.NewMsg(ordonats.CommandSubject(id, domain.CmdPlaceOrder))
	m.Data = body
	m.Header.Set(ordonats.HeaderMsgID, commandID+".1")
	m.Header.Set(ordonats.HeaderCommandID, commandID)
	m.Header.Set(ordonats.HeaderReplyTo, "$KV."+ordonats.BucketOutcomes+"."+victim)
	shopJS, _ := jetstream.New(shopNC)
	if _, err := shopJS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Wait until the command has its outcome: its reply would have gone out by then.
	for {
		out, err := ops.Outcome(ctx, commandID)
		if err == nil && out.State == string(domain.StatePlaced) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the command got no outcome: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := ops.Outcome(ctx, victim); !errors.Is(err, ordonats.ErrNoOutcome) {
		t.Fatalf("a reply to the outcome bucket was sent: key %s holds %+v (%v)", victim, out, err)
	}
}

// TestTLSEverywhere: with a certificate, the embedded NATS server (tls://),
// the HTTP API (https://) and the embedded event store (esdb://…?tls=true)
// serve TLS, as a real cluster would; the event store checks basic
// credentials like EventStoreDB: the official client with wrong (or no)
// credentials is refused with Unauthenticated, with the right ones it works.
func TestTLSEverywhere(t *testing.T) {
	pki, svc := startTLSService(t, false)
	ctx := ctxT(t)

	t.Run("NATS", func(t *testing.T) {
		if !strings.HasPrefix(svc.NATSURL(), "tls://") {
			t.Fatalf("NATS URL %s, want tls://", svc.NATSURL())
		}
		if nc, err := natsgo.Connect(svc.NATSURL()); err == nil {
			nc.Close()
			t.Fatal("connected without trusting the CA")
		}
		opts, err := ordonats.Credentials{CAFile: pki.CAFile}.Options()
		if err != nil {
			t.Fatal(err)
		}
		c, nc, _ := natsUser(t, svc.NATSURL(), opts...)
		if _, err := nc.TLSConnectionState(); err != nil {
			t.Fatalf("the connection is not TLS: %v", err)
		}
		if out, err := c.PlaceOrder(ctx, placeCmd(uuid.NewString())); err != nil || out.State != string(domain.StatePlaced) {
			t.Fatalf("place an order over TLS: %+v, %v", out, err)
		}
	})
	t.Run("HTTP", func(t *testing.T) {
		hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}}
		resp, err := hc.Get("https://" + svc.HTTPAddr() + "/healthz")
		if err != nil {
			t.Fatalf("https: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("https /healthz: %d", resp.StatusCode)
		}
		if resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + svc.HTTPAddr() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("plain HTTP was served")
			}
		}
	})
	t.Run("event store", func(t *testing.T) {
		url := svc.ESDBURL()
		if !strings.Contains(url, "tls=true") || !strings.Contains(url, "tlsCAFile=") {
			t.Fatalf("event store URL %s, want tls=true and tlsCAFile", url)
		}
		withUser := func(userinfo string) string { return strings.Replace(url, "esdb://", "esdb://"+userinfo, 1) }
		stream := "sec-" + uuid.NewString()
		appendOne := func(url string) error {
			c := esdbtest.Connect(t, url)
			_, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{},
				esdb.EventData{EventType: "Probe", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
			return err
		}
		for _, bad := range []string{withUser("admin:wrong@"), withUser("root:s3cret@"), url} {
			err := appendOne(bad)
			var esErr *esdb.Error
			if !errors.As(err, &esErr) || esErr.Code() != esdb.ErrorCodeUnauthenticated {
				t.Errorf("append with %s: got %v, want Unauthenticated", bad, err)
			}
		}
		if err := appendOne(withUser("admin:s3cret@")); err != nil {
			t.Fatalf("append with the right credentials: %v", err)
		}
		c := esdbtest.Connect(t, withUser("admin:s3cret@"))
		rs, err := c.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		if ev, err := rs.Recv(); err != nil || ev.Event.EventType != "Probe" {
			t.Fatalf("read back: %v, %v", ev, err)
		}
	})
}

// TestNetworkListenersNeedProtection: the embedded NATS server and event
// store refuse to listen beyond loopback without users (NATS) or an admin
// password and TLS (event store), unless told --insecure. The address is
// a documentation address no machine has, so nothing ever listens on a
// network.
func TestNetworkListenersNeedProtection(t *testing.T) {
	const away = "192.0.2.1:0" // TEST-NET-1
	cfg := config(t, t.TempDir())
	cfg.NATSURL, cfg.ESDBURL = "", ""
	cfg.NATSListen = away
	ctx := ctxT(t)
	if svc, err := serve.Start(ctx, cfg); err == nil {
		svc.Shutdown(ctx)
		t.Fatal("NATS started on a network address without users")
	} else if !strings.Contains(err.Error(), "--nats-auth") {
		t.Fatalf("NATS on a network address without users: got %v, want a refusal naming --nats-auth", err)
	}

	cases := []struct {
		name string
		auth *esdbserver.Auth
		tls  bool
		want string
	}{
		{"no password", nil, true, "admin password"},
		{"default password", &esdbserver.Auth{AdminPassword: esdbserver.DefaultAdminPassword}, true, "admin password"},
		{"no TLS", &esdbserver.Auth{AdminPassword: "s3cret"}, false, "--tls-cert"},
	}
	pki := newTestPKI(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := esdbserver.Config{DataDir: t.TempDir(), Listen: away, Auth: c.auth}
			if c.tls {
				sc.TLS = pki.serverTLS(t, false)
			}
			srv, err := esdbserver.Start(ctx, sc)
			if err == nil {
				srv.Close()
				t.Fatal("the event store started on a network address")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal naming %s", err, c.want)
			}
		})
	}
}

// startTLSService starts the service with the embedded servers on a
// certificate of a PKI made for the test (requiring client certificates
// signed by its CA when mutual) and the event store's admin password
// "s3cret". It skips the test against external servers.
func startTLSService(t *testing.T, mutual bool) (*testPKI, *serve.Service) {
	t.Helper()
	if os.Getenv("ORDO_NATS_URL") != "" || os.Getenv("ORDO_ESDB_URL") != "" {
		t.Skip("TLS is that of the embedded servers")
	}
	pki := newTestPKI(t)
	cfg := config(t, t.TempDir())
	cfg.Security.TLS = pki.serverTLS(t, mutual)
	cfg.Security.TLSCAFile = pki.CAFile
	cfg.Security.ESDBAuth = &esdbserver.Auth{AdminPassword: "s3cret", Required: true}
	return pki, startService(t, cfg)
}

// TestMutualTLS: with a client CA, the embedded NATS server, the HTTP API
// and the embedded event store admit only clients with a certificate
// signed by it; the service's own in-process connection needs none.
func TestMutualTLS(t *testing.T) {
	pki, svc := startTLSService(t, true)
	ctx := ctxT(t)

	withoutCert, err := ordonats.Credentials{CAFile: pki.CAFile}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := natsgo.Connect(svc.NATSURL(), withoutCert...); err == nil {
		nc.Close()
		t.Fatal("NATS admitted a client without a certificate")
	}
	withCert, err := ordonats.Credentials{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}.Options()
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := natsUser(t, svc.NATSURL(), withCert...)
	if out, err := c.PlaceOrder(ctx, placeCmd(uuid.NewString())); err != nil || out.State != string(domain.StatePlaced) {
		t.Fatalf("place an order with a client certificate: %+v, %v", out, err)
	}

	if resp, err := (&http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}}).
		Get("https://" + svc.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("HTTPS admitted a client without a certificate")
	}
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{cert}}}}
	resp, err := hc.Get("https://" + svc.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS with a client certificate: %v", err)
	}
	resp.Body.Close()

	url := strings.Replace(svc.ESDBURL(), "esdb://", "esdb://admin:s3cret@", 1)
	probe := func(url string) error {
		_, err := esdbtest.Connect(t, url).AppendToStream(ctx, "mtls-"+uuid.NewString(), esdb.AppendToStreamOptions{},
			esdb.EventData{EventType: "Probe", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
		return err
	}
	if err := probe(url); err == nil {
		t.Fatal("the event store admitted a client without a certificate")
	}
	if err := probe(url + "&userCertFile=" + pki.ClientCert + "&userKeyFile=" + pki.ClientKey); err != nil {
		t.Fatalf("the event store with a client certificate: %v", err)
	}
}

// TestServiceRoleOnExternalNATS: a service reaching a NATS server with
// users (here another embedded server, as an external cluster would be)
// connects with the credentials it is given (--nats-user/--nats-password
// with --nats-url) and works under the service role.
func TestServiceRoleOnExternalNATS(t *testing.T) {
	if os.Getenv("ORDO_NATS_URL") != "" {
		t.Skip("the users are those of the embedded NATS server")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("svc-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	shopHash, err := bcrypt.GenerateFromPassword([]byte("shop-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	ext, err := ordonats.StartEmbedded(ctx, ordonats.EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0",
		Auth: &ordonats.Auth{Users: []ordonats.AuthUser{
			{User: "ordo", Password: string(hash), Role: ordonats.RoleService},
			{User: "shop", Password: string(shopHash), Role: ordonats.RoleClient},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ext.Shutdown(context.Background()) })

	cfg := config(t, t.TempDir())
	cfg.NATSURL = ext.ClientURL()
	if _, err := serve.Start(ctx, cfg); err == nil {
		t.Fatal("the service connected to a NATS with users without credentials")
	}
	opts, err := ordonats.Credentials{User: "ordo", Password: "svc-pw"}.Options()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Security.NATSConnect = opts
	startService(t, cfg)
	shop, _, _ := natsUser(t, ext.ClientURL(), natsgo.UserInfo("shop", "shop-pw"))
	if out, err := shop.PlaceOrder(ctx, placeCmd(uuid.NewString())); err != nil || out.State != string(domain.StatePlaced) {
		t.Fatalf("place an order through the external NATS: %+v, %v", out, err)
	}
}
