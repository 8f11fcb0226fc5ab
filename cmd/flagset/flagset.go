// Package flagset builds the flag sets of Ordo's commands (ordo,
// ordo-bench), so that every command's --help reads the same: usage, what
// it does, examples, then the flags; and the NATS credential flags that
// the client commands of both take.
package flagset

import (
	"flag"
	"fmt"
	"io"
)

// New returns a flag set named usage that reports errors to stderr and
// whose -h prints usage, about and the examples before the flags.
func New(usage, about string, examples []string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(usage, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", usage, about)
		if len(examples) > 0 {
			fmt.Fprintln(w, "\nExamples:")
			for _, e := range examples {
				fmt.Fprintf(w, "  %s\n", e)
			}
		}
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}
