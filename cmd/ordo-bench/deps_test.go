package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOrdoCarriesNoBench keeps the load generator out of the product: the
// ordo binary does not depend on this command's Redis client or on this
// command, and neither cmd/ordo nor package nats holds load-generator
// files again.
func TestOrdoCarriesNoBench(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	deps, err := exec.Command("go", "list", "-deps", "../ordo").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, p := range strings.Fields(string(deps)) {
		if strings.HasPrefix(p, "github.com/redis/") || p == "github.com/ordo-dev/ordo/cmd/ordo-bench" {
			t.Errorf("cmd/ordo depends on %s, which only the load generator needs", p)
		}
	}
	files, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .GoFiles \" \"}}", "../ordo", "../../nats").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, files)
	}
	for _, f := range strings.Fields(string(files)) {
		if strings.Contains(f, "bench") || strings.Contains(f, "roundtrip") {
			t.Errorf("%s is load-generator code in the product (go list: %s)", f, strings.TrimSpace(string(files)))
		}
	}
}
