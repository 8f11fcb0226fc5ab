// Package ordo_test holds the import rule of the whole module: which of
// its packages may import which. The packages themselves live below.
package ordo_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ordo-dev/ordo"

// A rule covers a package and its subpackages (unless a longer rule names
// them), its group: the module's packages they may import besides their
// own group's (each entry with its subpackages), in their code and,
// additionally, in their tests; and, for the inner layers, the only
// third-party modules their code may depend on at all.
type rule struct {
	group       string
	imports     []string // packages (relative to the module), with their subpackages
	testImports []string // the same, for _test.go files only
	thirdParty  []string // module path prefixes; nil: not restricted
	testOnly    bool     // only tests may import the group, whatever the importer's rule says
	why         string
}

// everything stands for every group of the module.
var everything = []string{"*"}

// rules is the architecture (DESIGN.md §2, STYLE.md 1-3): dependencies
// point domain ← commands ← adapters ← cmd. Ports are declared by their
// consumers (commands.EventStore, commands.SagaSource, projections.Source,
// nats.Executor, …) and the translation between an adapter and a port
// lives in cmd/ordo/serve, so adapters (eventstore, nats, projections)
// never import each other.
var rules = []rule{
	{group: "", why: "the module's root holds only tests of the whole module (this one, the README's package table)"},
	{group: "domain", thirdParty: []string{"github.com/looplab/fsm"},
		why: "the order lifecycle: standard library and looplab/fsm only (domain/deps_test.go also bans net and SQL); " +
			"IDs are derived where they are used (a callback's idempotency key is domain's, its UUID nats.CallbackCommandID's, with google/uuid)"},
	{group: "jsonwire", imports: []string{"domain"}, thirdParty: []string{"github.com/looplab/fsm"},
		why: "the JSON Ordo reads most (stored events, the stock API), read as encoding/json would: outside domain so the domain knows no wire format; nothing beyond domain's own dependencies"},
	{group: "eventually", thirdParty: []string{}, testOnly: true,
		why: "the tests' one way to wait for a condition; only tests import it, so no binary links package testing"},
	{group: "smalldisk", thirdParty: []string{}, testOnly: true,
		why: "the tests' small disk to fill (a tmpfs per test, files that take its space); only tests import it"},
	{group: "logbuf", thirdParty: []string{}, testOnly: true,
		why: "the tests' log destination, read while several goroutines write; only tests import it"},
	{group: "gather", thirdParty: []string{},
		why: "collecting a batch from a channel, for the group commit, the stock lanes and the read models' batches: standard library only"},
	{group: "retry", thirdParty: []string{},
		why: "the one retry policy and loop, used by the use cases and the adapters: standard library only"},
	{group: "commands", imports: []string{"domain", "jsonwire", "retry", "gather"}, thirdParty: []string{"github.com/google/uuid", "github.com/looplab/fsm"},
		testImports: []string{"eventstore", "cmd/ordo/serve"},
		why:         "use cases over the ports they declare; tests run them on the real store through the composition's translation"},
	{group: "commands/audit", imports: []string{"domain", "jsonwire", "commands"}, thirdParty: []string{"github.com/google/uuid", "github.com/looplab/fsm"},
		testImports: []string{"eventstore", "cmd/ordo/serve"},
		why:         "the history read back through the domain (ordo history, state, verify) over the reads it declares; tests read the real store"},
	{group: "eventstore", imports: []string{"eventstore/esdbserver", "retry"}, testImports: []string{"eventually", "eventstore/esdbtest"},
		why: "the event store adapter: the official client, or the embedded server's storage in-process"},
	{group: "eventstore/esdbserver", imports: []string{"eventstore/datadir", "gather"},
		testImports: []string{"eventstore", "eventually", "smalldisk"},
		why:         "the embedded EventStoreDB-compatible server and its storage; its tests drive it through the official-client adapter as users do"},
	{group: "eventstore/esdbtest", testOnly: true,
		why: "test support for the official EventStoreDB client (a client per test); only tests import it"},
	{group: "eventstore/datadir", thirdParty: []string{},
		why: "the data-directory lock: standard library only, shared by the store and the CLI"},
	{group: "callbacksig", thirdParty: []string{},
		why: "signing and verifying payment callbacks (HMAC-SHA256): standard library only, used by the service, the CLI and Go clients"},
	{group: "nats", imports: []string{"domain", "jsonwire", "commands", "retry"}, testImports: []string{"callbacksig", "eventually", "logbuf", "smalldisk"},
		why: "the NATS adapter; its stock API carries commands.StockRequest/StockResult (nats/stock.go); it declares the callback signer and verifier it needs, its tests use the real ones"},
	{group: "projections", imports: []string{"domain", "jsonwire", "gather"},
		testImports: []string{"eventstore", "eventstore/esdbserver", "cmd/ordo/serve", "eventually"},
		why:         "read models over the Source/History ports they declare; tests feed them from the real store"},
	{group: "cmd", imports: everything, testImports: everything, why: "the composition and the CLI wire everything"},
	{group: "tests", imports: everything, testImports: everything, why: "end-to-end tests of the composition"},
}

// pkg is what go list says of one package of the module.
type pkg struct {
	ImportPath   string
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
	Standard     bool
}

// TestImportRules fails on any import between the module's packages that
// the rules do not allow, on a package no rule covers, and on
// infrastructure creeping into the inner layers.
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	pkgs := listPackages(t)
	if len(pkgs) < 8 {
		t.Fatalf("go list found %d packages of the module; the rule would check nothing", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := ruleOf(rel)
		if !ok {
			t.Errorf("no import rule covers package %s: add its group to rules in imports_test.go", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			checkEdge(t, rel, imp, r, r.imports, "")
		}
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			checkEdge(t, rel, imp, r, slices.Concat(r.imports, r.testImports), " (in a test)")
		}
		if r.thirdParty != nil {
			checkThirdParty(t, p, r)
		}
	}
}

func listPackages(tb testing.TB) []pkg {
	tb.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps,TestImports,XTestImports,Standard", "./...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			tb.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		tb.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// ruleOf is the rule of the longest group that is rel or a parent of it.
func ruleOf(rel string) (rule, bool) {
	var best rule
	found := false
	for _, r := range rules {
		if (rel == r.group || strings.HasPrefix(rel, r.group+"/")) && (!found || len(r.group) > len(best.group)) {
			best, found = r, true
		}
	}
	return best, found
}

// checkEdge reports an import of a module package that r does not allow.
func checkEdge(tb testing.TB, from, imp string, r rule, allowed []string, where string) {
	tb.Helper()
	if imp != module && !strings.HasPrefix(imp, module+"/") {
		return
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
	to, ok := ruleOf(rel)
	switch {
	case !ok:
		return // reported for the imported package itself
	case to.testOnly && where == "" && to.group != r.group:
		tb.Errorf("%s imports %s outside its tests: %s", module+"/"+from, imp, to.why)
		return
	case to.group == r.group, slices.Contains(allowed, "*"),
		slices.ContainsFunc(allowed, func(a string) bool { return rel == a || strings.HasPrefix(rel, a+"/") }):
		return
	}
	tb.Errorf("%s imports %s%s: group %q may import only %v (%s); translate between ports in cmd/ordo/serve instead",
		module+"/"+from, imp, where, r.group, allowedList(r.group, allowed), r.why)
}

func allowedList(own string, allowed []string) []string {
	return append([]string{own}, allowed...)
}

// checkThirdParty reports a third-party dependency of an inner layer that
// its rule does not list (anything of the module is checked by checkEdge).
func checkThirdParty(tb testing.TB, p pkg, r rule) {
	tb.Helper()
	std := standardPackages(tb)
	for _, d := range p.Deps {
		if std[d] || d == module || strings.HasPrefix(d, module+"/") {
			continue
		}
		if !slices.ContainsFunc(r.thirdParty, func(m string) bool { return d == m || strings.HasPrefix(d, m+"/") }) {
			tb.Errorf("%s depends on %s: group %q may depend only on %v outside the standard library (%s)",
				p.ImportPath, d, r.group, r.thirdParty, r.why)
		}
	}
}

var stdCache map[string]bool

// standardPackages is the set of the standard library's packages.
func standardPackages(tb testing.TB) map[string]bool {
	tb.Helper()
	if stdCache != nil {
		return stdCache
	}
	out, err := exec.Command("go", "list", "std").Output()
	if err != nil {
		tb.Fatalf("go list std: %v", err)
	}
	stdCache = map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		stdCache[p] = true
	}
	return stdCache
}
