package main

import (
	"os"
	"strings"
	"testing"

	"github.com/ordo-dev/ordo/domain"
)

// TestReadmeDiagramMatchesCode fails when the lifecycle diagram in the README
// is not exactly what `ordo fsm` prints. Refresh it with:
//
//	go run ./cmd/ordo fsm   # and paste between the fsm markers
func TestReadmeDiagramMatchesCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- fsm:begin -->\n", "<!-- fsm:end -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", strings.TrimSpace(begin), end)
	}
	got := s[i+len(begin) : j]
	want := "```mermaid\n" + domain.Mermaid() + "```\n"
	if got != want {
		t.Fatalf("README diagram differs from `ordo fsm`; replace the block between the markers with:\n%s", want)
	}
}

func TestFSMCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "stateDiagram-v2"},
		{[]string{"--format", "mermaid"}, "stateDiagram-v2"},
		{[]string{"--format", "dot"}, "digraph order_lifecycle"},
	} {
		var out, errOut strings.Builder
		if err := run(t.Context(), append([]string{"fsm"}, tc.args...), &out, &errOut); err != nil {
			t.Fatalf("ordo fsm %v: %v", tc.args, err)
		}
		if !strings.HasPrefix(out.String(), tc.want) {
			t.Fatalf("ordo fsm %v printed %q..., want %q", tc.args, firstLine(out.String()), tc.want)
		}
	}
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"fsm", "--format", "svg"}, &out, &errOut)
	if _, ok := err.(usageError); !ok || exitCode(err, &errOut) != 2 {
		t.Fatalf("ordo fsm --format svg: got %v, want a usage error (exit 2)", err)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
