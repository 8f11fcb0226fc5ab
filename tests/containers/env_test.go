//go:build containers

package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/ordo-dev/ordo/eventstore"
	ordonats "github.com/ordo-dev/ordo/nats"
)

// Test-only image tags: built at the start of the run, removed at its end.
const (
	ordoImage     = "ordo-test/ordo:containers-test"
	natsImage     = "ordo-test/nats-server:containers-test"
	postgresImage = "ordo-test/postgres:containers-test"
)

// images is set by TestMain once the images are built; skipReason when no
// Docker engine answers.
var (
	provider   *testcontainers.DockerProvider
	skipReason string
)

func TestMain(m *testing.M) {
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // the reaper's image cannot be pulled here
	code, err := setUp()
	if err != nil {
		fmt.Fprintln(os.Stderr, "containers:", err)
		os.Exit(1)
	}
	if code >= 0 {
		os.Exit(code)
	}
	code = m.Run()
	tearDown()
	os.Exit(code)
}

// setUp finds the Docker engine and builds the images. It returns -1 to run
// the tests, or an exit code to stop with.
func setUp() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err == nil {
		err = p.Health(ctx)
	}
	if err != nil {
		skipReason = fmt.Sprintf("no Docker engine answers (%v)", err)
		if os.Getenv("ORDO_CONTAINERS_REQUIRED") == "1" {
			return 0, fmt.Errorf("ORDO_CONTAINERS_REQUIRED=1 but %s", skipReason)
		}
		fmt.Println("containers: skipped:", skipReason)
		return -1, nil
	}
	provider = p
	start := time.Now()
	if err := buildImages(ctx); err != nil {
		return 0, err
	}
	fmt.Printf("containers: images built in %s\n", time.Since(start).Round(time.Second))
	return -1, nil
}

func tearDown() {
	if provider == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, img := range []string{ordoImage, natsImage, postgresImage} {
		if _, err := provider.Client().ImageRemove(ctx, img, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			fmt.Fprintf(os.Stderr, "containers: remove image %s: %v\n", img, err)
		}
	}
	provider.Close()
}

// requireDocker skips the test, with one line, when no engine answered.
func requireDocker(t *testing.T) {
	t.Helper()
	if provider == nil {
		t.Skip("containers: skipped:", skipReason)
	}
}

// repoRoot is the module's root, two levels up from this package.
func repoRoot() string {
	dir, _ := filepath.Abs(filepath.Join("..", ".."))
	return dir
}

// buildImages builds the static binaries on the host (no golang image can
// be pulled) and the images from the repository's Dockerfiles around them.
func buildImages(ctx context.Context) error {
	root := repoRoot()
	tmp, err := os.MkdirTemp("", "ordo-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, b := range []struct{ dir, out, pkg, dockerfile, tag string }{
		{"ordo", "ordo", "./cmd/ordo", "docker/ordo.Dockerfile", ordoImage},
		{"nats", "nats-server", "github.com/nats-io/nats-server/v2", "docker/nats-server.Dockerfile", natsImage},
	} {
		dir := filepath.Join(tmp, b.dir)
		for _, d := range []string{"data", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
		}
		if err := copyFile(filepath.Join(root, b.dockerfile), filepath.Join(dir, "Dockerfile")); err != nil {
			return err
		}
		if err := buildImage(ctx, dir, b.tag); err != nil {
			return err
		}
	}
	return buildPostgres(ctx, root)
}

// buildPostgres makes PostgreSQL's image from the host's Debian postgresql
// (docker/postgres/context.sh assembles its context in seconds, installing
// postgresql when it is missing) and docker/postgres/Dockerfile.
func buildPostgres(ctx context.Context, root string) error {
	dir, err := os.MkdirTemp("", "ordo-postgres-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, filepath.Join(root, "docker", "postgres", "context.sh"), dir)
	cmd.Env = append(os.Environ(), "ORDO_PG_PASSWORD="+pgPassword)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker/postgres/context.sh (PostgreSQL from the host's Debian packages; apt-get install postgresql): %v\n%s", err, out)
	}
	if err := copyFile(filepath.Join(root, "docker", "postgres", "Dockerfile"), filepath.Join(dir, "Dockerfile")); err != nil {
		return err
	}
	return buildImage(ctx, dir, postgresImage)
}

func buildImage(ctx context.Context, dir, tag string) error {
	repo, version, _ := strings.Cut(tag, ":")
	_, err := provider.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: dir, Dockerfile: "Dockerfile", Repo: repo, Tag: version, KeepImage: true,
	}})
	if err != nil {
		return fmt.Errorf("build image %s from %s: %w", tag, dir, err)
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// node is one container of the topology, reachable from the tests on
// 127.0.0.1 through fixed published ports (fixed so that they survive the
// container's restart).
type node struct {
	name  string // its name on the private network
	c     *testcontainers.DockerContainer
	ports map[string]int // container port ("4222/tcp") -> port on 127.0.0.1
}

func (n *node) addr(port string) string {
	return "127.0.0.1:" + strconv.Itoa(n.ports[port])
}

// cluster is the topology of issue 17 on one private network.
type cluster struct {
	t      *testing.T
	prefix string
	net    *testcontainers.DockerNetwork
	nats   [3]*node
	store  *node
	pg     *node
	ordo   [2]*node

	nc     *natsgo.Conn
	client *ordonats.Client
	es     *eventstore.Store

	scenarios int  // scenarios started, for their SKUs' names
	broken    bool // a fault is not healed yet
}

const (
	natsRoutes = "nats://nats1:6222,nats://nats2:6222,nats://nats3:6222"
	natsURLs   = "nats://nats1:4222,nats://nats2:4222,nats://nats3:4222"
	esdbURL    = "esdb://eventstore:2113?tls=false"
	// pgPassword is the test cluster's password for the role postgres:
	// docker/postgres/context.sh allows password logins only.
	pgPassword = "ordo-test"
	pgDSN      = "postgres://postgres:" + pgPassword + "@postgres:5432/postgres?sslmode=disable"
)

// startCluster starts every container and connects a client to the NATS
// cluster; everything is removed at the end of the test.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	requireDocker(t)
	ctx := ctxT(t, 5*time.Minute)
	c := &cluster{t: t, prefix: fmt.Sprintf("ordo-ct-%d-%s-", os.Getpid(), t.Name())}
	nw, err := tcnetwork.New(ctx)
	if err != nil {
		t.Fatalf("create the private network: %v", err)
	}
	c.net = nw
	t.Cleanup(func() {
		if err := nw.Remove(context.Background()); err != nil {
			t.Logf("remove network: %v", err)
		}
	})
	for i := range c.nats {
		name := fmt.Sprintf("nats%d", i+1)
		c.nats[i] = c.run(ctx, name, natsImage, []string{"--jetstream", "--store_dir", "/data",
			"--server_name", name, "--cluster_name", "ordo", "--cluster", "nats://0.0.0.0:6222",
			"--routes", natsRoutes, "--no_advertise", "--http_port", "8222"}, container.RestartPolicyDisabled, "4222/tcp", "8222/tcp")
	}
	c.store = c.run(ctx, "eventstore", ordoImage, []string{"eventstore", "serve", "--listen", "0.0.0.0:2113", "--data", "/data/eventstore",
		// No TLS and no admin password on the tests' private network, as
		// docker-compose.yml runs KurrentDB insecure.
		"--insecure"}, container.RestartPolicyDisabled, "2113/tcp")
	c.pg = c.run(ctx, "postgres", postgresImage, nil, container.RestartPolicyDisabled, "5432/tcp")
	c.connect(ctx)
	c.awaitPostgres(ctx)
	// Both at once, as `docker compose up` starts them, with its
	// `restart: unless-stopped` as a safety net; but an instance must come
	// up by itself on a cluster that is still forming (waiting for NATS),
	// so one that exited before it was ready fails the suite.
	for i := range c.ordo {
		c.ordo[i] = c.run(ctx, fmt.Sprintf("ordo%d", i+1), ordoImage, ordoServe(), container.RestartPolicyUnlessStopped, "8080/tcp")
	}
	for _, o := range c.ordo {
		c.awaitReady(o, 2*time.Minute)
		if n := c.restarts(o); n > 0 {
			t.Errorf("startup: %s exited %d time(s) before it was ready and only its restart policy brought it up; it must wait for NATS instead (its log follows)", o.name, n)
			c.dumpLogs(o)
		}
	}
	return c
}

// restarts is how often Docker restarted a container after it exited.
func (c *cluster) restarts(n *node) int {
	c.t.Helper()
	res, err := provider.Client().ContainerInspect(ctxT(c.t, time.Minute), n.c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		c.t.Fatalf("inspect %s: %v", n.name, err)
	}
	return res.Container.RestartCount
}

// ordoServe is the command of an Ordo instance on the shared cluster:
// every stream and bucket on the 3 NATS nodes, as docker-compose.yml runs it.
func ordoServe() []string {
	return []string{"serve", "--data", "/data", "--http", "0.0.0.0:8080",
		"--nats-url", natsURLs, "--nats-replicas", "3", "--esdb-url", esdbURL, "--readmodel-dsn", pgDSN}
}

// run starts a container on the private network under its name, with a
// restart policy and its ports published on 127.0.0.1 only.
func (c *cluster) run(ctx context.Context, name, image string, cmd []string, restart container.RestartPolicyMode, ports ...string) *node {
	c.t.Helper()
	n := &node{name: name, ports: map[string]int{}}
	bindings := network.PortMap{}
	for _, p := range ports {
		n.ports[p] = freePort(c.t)
		bindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(n.ports[p])}}
	}
	req := testcontainers.ContainerRequest{
		Image: image, Name: c.prefix + name, Cmd: cmd, ExposedPorts: ports,
		Networks: []string{c.net.Name}, NetworkAliases: map[string][]string{c.net.Name: {name}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = bindings
			hc.RestartPolicy = container.RestartPolicy{Name: restart}
		},
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if ctr != nil {
		c.t.Cleanup(func() {
			if c.t.Failed() {
				c.dumpLogs(n)
			}
			if err := ctr.Terminate(context.Background()); err != nil {
				c.t.Logf("terminate %s: %v", name, err)
			}
		})
	}
	if err != nil {
		c.t.Fatalf("start %s (%s): %v", name, image, err)
	}
	n.c = ctr.(*testcontainers.DockerContainer)
	return n
}

// dumpLogs logs a container's last lines and keeps its whole log in a file
// (the container is removed at the end) for what came before them.
func (c *cluster) dumpLogs(n *node) {
	out, _ := exec.Command("docker", "logs", "--timestamps", n.c.GetContainerID()).CombinedOutput()
	file := filepath.Join(os.TempDir(), c.prefix+n.name+".log")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		file = fmt.Sprintf("not kept: %v", err)
	}
	c.t.Logf("last lines of %s (whole log: %s):\n%s", n.name, file, tailLines(string(out), 40))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connect connects the tests' client to every NATS node, waits for
// JetStream to answer (the cluster has elected its meta leader), and
// connects to the event store.
func (c *cluster) connect(ctx context.Context) {
	t := c.t
	urls := make([]string, len(c.nats))
	for i, n := range c.nats {
		urls[i] = "nats://" + n.addr("4222/tcp")
	}
	var err error
	c.nc, err = natsgo.Connect(strings.Join(urls, ","), natsgo.MaxReconnects(-1), natsgo.ReconnectWait(250*time.Millisecond),
		natsgo.RetryOnFailedConnect(true),
		// As ordo serve does: leave a partitioned node within seconds.
		natsgo.PingInterval(2*time.Second), natsgo.MaxPingsOutstanding(3))
	if err != nil {
		t.Fatalf("connect to the NATS cluster: %v", err)
	}
	t.Cleanup(c.nc.Close)
	js, err := jetstream.New(c.nc)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "JetStream answers on the 3-node cluster", func() bool {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(actx)
		return err == nil
	})
	if c.client, err = ordonats.NewClient(c.nc, ordonats.ClientOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.client.Close() })
	if c.es, err = eventstore.Connect(ctx, "esdb://"+c.store.addr("2113/tcp")+"?tls=false"); err != nil {
		t.Fatalf("connect to the event store container: %v", err)
	}
	t.Cleanup(func() { c.es.Close() })
}

func (c *cluster) awaitPostgres(ctx context.Context) {
	waitFor(c.t, 2*time.Minute, "PostgreSQL accepts connections", func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, "postgres://postgres:"+pgPassword+"@"+c.pg.addr("5432/tcp")+"/postgres?sslmode=disable")
		if err != nil {
			return false
		}
		conn.Close(cctx)
		return true
	})
}

// awaitReady waits for an Ordo instance's /readyz.
func (c *cluster) awaitReady(n *node, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	hc := http.Client{Timeout: 2 * time.Second}
	waitFor(c.t, within, n.name+" ready", func() bool {
		resp, err := hc.Get("http://" + n.addr("8080/tcp") + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return time.Since(start)
}

// parts is an Ordo instance's /readyz: each part's state ("up",
// "standby: …", "down: …").
func (c *cluster) parts(n *node) (map[string]string, error) {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + n.addr("8080/tcp") + "/readyz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Parts map[string]string `json:"parts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("GET /readyz of %s: %w", n.name, err)
	}
	return r.Parts, nil
}

// sagaHolder is the index of the instance whose saga is up: the holder of
// the saga and stock lease (the other is on standby).
func (c *cluster) sagaHolder() int {
	c.t.Helper()
	holder := -1
	waitFor(c.t, time.Minute, "one instance holds the saga lease", func() bool {
		for i, n := range c.ordo {
			if p, err := c.parts(n); err == nil && p["saga"] == "up" {
				holder = i
				return true
			}
		}
		return false
	})
	return holder
}

// awaitPart waits for a part of an instance to reach a state and returns
// how long that took, or -1 when it did not within the time given.
func (c *cluster) awaitPart(n *node, part, state string, within time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < within {
		if p, err := c.parts(n); err == nil && p[part] == state {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

// awaitNATSWhole waits until every NATS node answers /healthz (its copy
// of every stream and consumer is current) and has routes to both others,
// and returns how long that took. A node can be current through one peer
// while its route to the other is still being retried (their names are
// resolved by Docker's DNS, which times out under load); cutting that peer
// off then leaves two nodes that do not see each other and no quorum.
func (c *cluster) awaitNATSWhole(within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	hc := http.Client{Timeout: 2 * time.Second}
	waitFor(c.t, within, "every NATS node current (/healthz) and routed to both others (/routez)", func() bool {
		for _, n := range c.nats {
			resp, err := hc.Get("http://" + n.addr("8222/tcp") + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
			resp, err = hc.Get("http://" + n.addr("8222/tcp") + "/routez")
			if err != nil {
				return false
			}
			var rz struct {
				Routes []struct {
					RemoteName string `json:"remote_name"`
				} `json:"routes"`
			}
			err = json.NewDecoder(resp.Body).Decode(&rz)
			resp.Body.Close()
			if err != nil {
				return false
			}
			peers := map[string]bool{}
			for _, r := range rz.Routes {
				if r.RemoteName != n.name {
					peers[r.RemoteName] = true
				}
			}
			if len(peers) < len(c.nats)-1 {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// kill is `docker kill`: SIGKILL, no shutdown.
func (c *cluster) kill(n *node) {
	c.t.Helper()
	if _, err := provider.Client().ContainerKill(ctxT(c.t, time.Minute), n.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		c.t.Fatalf("docker kill %s: %v", n.name, err)
	}
}

// start starts a stopped container again, with its data and ports.
func (c *cluster) start(n *node) {
	c.t.Helper()
	if _, err := provider.Client().ContainerStart(ctxT(c.t, time.Minute), n.c.GetContainerID(), client.ContainerStartOptions{}); err != nil {
		c.t.Fatalf("docker start %s: %v", n.name, err)
	}
}

// restart is `docker restart`: SIGTERM, then start again.
func (c *cluster) restart(n *node) {
	c.t.Helper()
	timeout := 10
	if _, err := provider.Client().ContainerRestart(ctxT(c.t, time.Minute), n.c.GetContainerID(), client.ContainerRestartOptions{Timeout: &timeout}); err != nil {
		c.t.Fatalf("docker restart %s: %v", n.name, err)
	}
}

// disconnect cuts a container off the private network; connect heals it
// under its name.
func (c *cluster) disconnect(n *node) {
	c.t.Helper()
	if _, err := provider.Client().NetworkDisconnect(ctxT(c.t, time.Minute), c.net.ID, client.NetworkDisconnectOptions{Container: n.c.GetContainerID(), Force: true}); err != nil {
		c.t.Fatalf("docker network disconnect %s: %v", n.name, err)
	}
}

func (c *cluster) connectNode(n *node) {
	c.t.Helper()
	if _, err := provider.Client().NetworkConnect(ctxT(c.t, time.Minute), c.net.ID, client.NetworkConnectOptions{
		Container: n.c.GetContainerID(), EndpointConfig: &network.EndpointSettings{Aliases: []string{n.name}}}); err != nil {
		c.t.Fatalf("docker network connect %s: %v", n.name, err)
	}
}

// exec runs a command in a container and returns its exit code and output.
func (c *cluster) exec(n *node, cmd ...string) (int, string) {
	c.t.Helper()
	code, r, err := n.c.Exec(ctxT(c.t, 5*time.Minute), cmd)
	if err != nil {
		c.t.Fatalf("exec %v in %s: %v", cmd, n.name, err)
	}
	var out strings.Builder
	if r != nil {
		io.Copy(&out, r)
	}
	return code, out.String()
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
