package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestEveryStateCommandPair decides every command in every state: pairs the
// lifecycle table allows produce the table's events (which then fold
// cleanly), every other pair is refused with illegal_transition (or
// not_found before the order exists).
func TestEveryStateCommandPair(t *testing.T) {
	states := append([]State{StateNone}, States()...)
	for _, s := range states {
		for _, typ := range CommandTypes() {
			t.Run(stateName(s)+"/"+typ, func(t *testing.T) {
				o := fold(t, givenState(s))
				if o.State() != s {
					t.Fatalf("given history ends in %q, want %q", o.State(), s)
				}
				events, err := o.Decide(sampleCommand(typ), CommandMeta{CommandID: "cmd-1"}, t0)
				row, ok := tableRow(s, typ)
				if !ok {
					want := ErrIllegalTransition
					if s == StateNone {
						want = ErrNotFound
					}
					if !errors.Is(err, want) || events != nil {
						t.Fatalf("got events %v, err %v; want %v", eventTypes(events), err, want.Code)
					}
					return
				}
				if err != nil {
					t.Fatalf("got error %v, want events %v", err, row.Events)
				}
				if got := eventTypes(events); !slices.Equal(got, row.Events) {
					t.Fatalf("got events %v, want %v", got, row.Events)
				}
				for _, e := range events {
					if err := o.Apply(e); err != nil {
						t.Fatalf("decided event %s does not fold: %v", e.Type, err)
					}
				}
				want := row.To
				if row.Same {
					want = s
				}
				if o.State() != want {
					t.Fatalf("state after %s is %q, want %q", typ, o.State(), want)
				}
				if first, last, ok := o.CommandOutcome("cmd-1"); !ok || last-first+1 != int64(len(events)) {
					t.Fatalf("CommandOutcome(cmd-1) = %d, %d, %t; want a range of %d events", first, last, ok, len(events))
				}
			})
		}
	}
}

func tableRow(s State, command string) (Transition, bool) {
	for _, t := range Lifecycle() {
		if t.Command == command && slices.Contains(t.From, s) {
			return t, true
		}
	}
	return Transition{}, false
}

// TestFSMMatchesTable checks the looplab/fsm gate agrees with the table for
// every pair, including the automatic step.
func TestFSMMatchesTable(t *testing.T) {
	for _, s := range append([]State{StateNone}, States()...) {
		for _, typ := range append(CommandTypes(), autoRefunded) {
			_, inTable := tableRow(s, typ)
			if got := allowed(s, typ); got != inTable {
				t.Errorf("allowed(%s, %s) = %t, table says %t", stateName(s), typ, got, inTable)
			}
		}
	}
}

func TestEveryStateIsReachableAndNamed(t *testing.T) {
	want := []State{"placed", "awaiting_payment", "paid", "shipped", "delivered", "completed", "cancelled", "refunded"}
	if !slices.Equal(States(), want) {
		t.Fatalf("States() = %v, want the public names %v", States(), want)
	}
	reached := map[State]bool{}
	for _, tr := range Lifecycle() {
		if !tr.Same {
			reached[tr.To] = true
		}
	}
	for _, s := range want {
		if !reached[s] {
			t.Errorf("no transition leads to %s", s)
		}
	}
}

func TestDiagramsCoverEveryTransition(t *testing.T) {
	m, d := Mermaid(), Dot()
	for _, e := range edges() {
		if !containsEdge(m, e) {
			t.Errorf("Mermaid lacks %s -> %s", stateName(e.from), e.to)
		}
		if !slices.ContainsFunc(splitLines(d), func(l string) bool { return hasAll(l, string(e.to), e.label) }) {
			t.Errorf("Dot lacks %s -> %s", stateName(e.from), e.to)
		}
	}
}

func containsEdge(mermaid string, e edge) bool {
	from := string(e.from)
	if e.from == StateNone {
		from = "[*]"
	}
	return slices.Contains(splitLines(mermaid), "    "+from+" --> "+string(e.to)+": "+e.label)
}

func splitLines(s string) []string { return strings.Split(s, "\n") }

func hasAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
