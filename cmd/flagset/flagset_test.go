package flagset_test

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/ordo-dev/ordo/cmd/flagset"
)

func TestHelpReadsTheSame(t *testing.T) {
	var out strings.Builder
	fs := flagset.New("tool run [--n N]", "Runs the tool.", []string{"tool run --n 3"}, &out)
	fs.Int("n", 1, "how many")
	if err := fs.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: got %v, want flag.ErrHelp", err)
	}
	got := out.String()
	want := []string{"Usage: tool run [--n N]\n\nRuns the tool.\n", "\nExamples:\n  tool run --n 3\n", "\nFlags:\n", "-n int", "how many"}
	at := 0
	for _, w := range want {
		i := strings.Index(got[at:], w)
		if i < 0 {
			t.Fatalf("help:\n%s\nwant %q after offset %d", got, w, at)
		}
		at += i + len(w)
	}
}
