package main

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ordo-dev/ordo/domain"
)

// TestReadmeDiagramMatchesCode fails when the lifecycle diagram or table in
// the README is not exactly what `ordo fsm` prints. Refresh them with:
//
//	go run ./cmd/ordo fsm                 # between the fsm markers, in a mermaid block
//	go run ./cmd/ordo fsm --format table  # between the fsm-table markers
func TestReadmeDiagramMatchesCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ marker, want, command string }{
		{"fsm", "```mermaid\n" + domain.Mermaid() + "```\n", "ordo fsm"},
		{"fsm-table", domain.Table(), "ordo fsm --format table"},
	} {
		begin, end := "<!-- "+tc.marker+":begin -->\n", "<!-- "+tc.marker+":end -->"
		s := string(readme)
		i, j := strings.Index(s, begin), strings.Index(s, end)
		if i < 0 || j < i {
			t.Fatalf("README.md lacks the %q ... %q markers", strings.TrimSpace(begin), end)
		}
		if got := s[i+len(begin) : j]; got != tc.want {
			t.Fatalf("README block %q differs from `%s`; replace it with:\n%s", tc.marker, tc.command, tc.want)
		}
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

// TestReadmeErrorCodes fails when the README's table of error codes misses
// a code of the domain's table, shows another status for it, or lists a
// code the domain does not have.
func TestReadmeErrorCodes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Error codes\n")
	if !ok {
		t.Fatal("README.md has no Error codes section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{} // code → status column
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	for _, c := range domain.Codes() {
		want := strconv.Itoa(domain.HTTPStatus(c))
		if n := domain.NATSStatus(c); n != domain.HTTPStatus(c) {
			want += " / " + strconv.Itoa(n)
		}
		if got, ok := rows[string(c)]; !ok || got != want {
			t.Errorf("README error codes: %s has status %q, want %q", c, got, want)
		}
		delete(rows, string(c))
	}
	for code := range rows {
		t.Errorf("README error codes list %q, which the domain does not have", code)
	}
}
