package domain

import (
	"fmt"
	"strings"
)

// Mermaid renders the lifecycle table as a Mermaid stateDiagram-v2. Each
// edge is labelled with the commands that take it; the events each command
// records are in the table (Lifecycle) and the README.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	for _, e := range edges() {
		from, to := e.from, e.to
		if from == StateNone {
			fmt.Fprintf(&b, "    [*] --> %s: %s\n", to, e.label)
			continue
		}
		fmt.Fprintf(&b, "    %s --> %s: %s\n", from, to, e.label)
	}
	for _, s := range []State{StateCompleted, StateCancelled, StateRefunded} {
		fmt.Fprintf(&b, "    %s --> [*]\n", s)
	}
	return b.String()
}

// Dot renders the lifecycle table for Graphviz.
func Dot() string {
	var b strings.Builder
	b.WriteString("digraph order_lifecycle {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n    start [shape=point];\n")
	for _, e := range edges() {
		from := string(e.from)
		if e.from == StateNone {
			from = "start"
		}
		fmt.Fprintf(&b, "    %s -> %s [label=%q];\n", from, e.to, e.label)
	}
	b.WriteString("}\n")
	return b.String()
}

type edge struct {
	from, to State
	label    string
}

// edges expands the table into one edge per (from, to) pair, in table
// order, labelled with the commands that take it; self-loops are merged the
// same way, so each state shows what it accepts without moving.
func edges() []edge {
	var out []edge
	at := map[[2]State]int{}
	for _, t := range lifecycle {
		for _, from := range t.From {
			to := t.To
			if t.Same {
				to = from
			}
			k := [2]State{from, to}
			if i, ok := at[k]; ok {
				out[i].label += ", " + t.Command
				continue
			}
			at[k] = len(out)
			out = append(out, edge{from: from, to: to, label: t.Command})
		}
	}
	return out
}

// Table renders the lifecycle table as Markdown: one row per transition
// with the events it records and the condition that applies.
func Table() string {
	var b strings.Builder
	b.WriteString("| from | command | events | to | note |\n|---|---|---|---|---|\n")
	for _, t := range lifecycle {
		from := make([]string, len(t.From))
		for i, s := range t.From {
			from[i] = stateName(s)
		}
		to := string(t.To)
		if t.Same {
			to = "(unchanged)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", strings.Join(from, ", "), t.Command, strings.Join(t.Events, " + "), to, t.Note)
	}
	return b.String()
}
