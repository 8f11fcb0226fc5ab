package domain

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection keeps the domain free of infrastructure: its
// transitive imports may be the standard library and looplab/fsm only, and
// among the standard library nothing that talks to networks or databases.
func TestDependencyDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "github.com/ordo-dev/ordo/domain", p == "github.com/looplab/fsm":
		default:
			t.Errorf("domain depends on %s; it may import only the standard library and github.com/looplab/fsm", p)
		}
	}
	std, err := exec.Command("go", "list", "-deps", "-f", "{{if .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, std)
	}
	for _, p := range strings.Fields(string(std)) {
		for _, banned := range []string{"net", "database/sql", "os/exec", "net/http"} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("domain depends on %s: infrastructure belongs in adapters", p)
			}
		}
	}
}
