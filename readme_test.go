package ordo_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestReadmePackageTable fails when README.md's package table and the
// tree disagree: every package of the module is named in the table (a
// subpackage may be named in its parent's row), and every row is a
// package that exists.
func TestReadmePackageTable(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := packageTable(t, string(readme))
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z][a-z0-9/-]*)`").FindAllStringSubmatch(table, -1) {
		named[m[1]] = true
	}
	exists := map[string]bool{}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if rel == "" {
			continue
		}
		exists[rel] = true
		if !named[rel] {
			t.Errorf("README.md's package table does not name %s: add a row saying what it is for", rel)
		}
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(table, -1) {
		if !exists[m[1]] {
			t.Errorf("README.md's package table has a row for %s, which is not a package of the module", m[1])
		}
	}
}

// packageTable is the README's table that starts with "| package | job |".
func packageTable(tb testing.TB, readme string) string {
	tb.Helper()
	_, rest, ok := strings.Cut(readme, "\n| package | job |\n")
	if !ok {
		tb.Fatal(`README.md has no table headed "| package | job |"`)
	}
	table, _, _ := strings.Cut(rest, "\n\n")
	return table
}
