package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ordo-dev/ordo/domain"
)

// runFSM prints the order lifecycle, rendered from the domain's table.
func runFSM(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ordo fsm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "mermaid", "mermaid (stateDiagram-v2), dot (Graphviz) or table (Markdown, with the events of each transition)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: ordo fsm [--format mermaid|dot|table]")
		fmt.Fprintln(fs.Output(), "\nPrints the order lifecycle diagram generated from the domain's transition table.")
		fmt.Fprintln(fs.Output(), "\nExamples:\n  ordo fsm\n  ordo fsm --format dot | dot -Tsvg > lifecycle.svg")
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("fsm takes no arguments, got %q", fs.Args())}
	}
	switch *format {
	case "mermaid":
		_, err := io.WriteString(stdout, domain.Mermaid())
		return err
	case "dot":
		_, err := io.WriteString(stdout, domain.Dot())
		return err
	case "table":
		_, err := io.WriteString(stdout, domain.Table())
		return err
	default:
		return usageError{fmt.Sprintf("unknown --format %q: use mermaid, dot or table", *format)}
	}
}
