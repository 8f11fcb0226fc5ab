package serve

import (
	"encoding/xml"
	"slices"
	"strings"
	"testing"

	"github.com/ordo-dev/ordo/domain"
)

// TestLifecycleSVGFollowsTheTable: the page's diagram is well-formed SVG
// with one box per lifecycle state and one arrow per move of the domain's
// transition table (self-loops go into the state's title), so a state or
// transition added to the domain shows on the page without a change here.
func TestLifecycleSVGFollowsTheTable(t *testing.T) {
	type group struct {
		Class string `xml:"class,attr"`
		State string `xml:"data-state,attr"`
		From  string `xml:"data-from,attr"`
		To    string `xml:"data-to,attr"`
		Title string `xml:"title"`
	}
	var svg struct {
		XMLName xml.Name `xml:"svg"`
		Groups  []group  `xml:"g"`
	}
	if err := xml.Unmarshal([]byte(lifecycleSVG()), &svg); err != nil {
		t.Fatalf("the lifecycle SVG does not parse: %v", err)
	}
	var states, edges []string
	titles := map[string]string{}
	for _, g := range svg.Groups {
		switch g.Class {
		case "state":
			states = append(states, g.State)
			titles[g.State] = g.Title
		case "edge":
			edges = append(edges, g.From+">"+g.To)
		}
	}
	var wantStates, wantEdges []string
	for _, s := range domain.States() {
		wantStates = append(wantStates, string(s))
	}
	loops := map[domain.State]bool{}
	for _, tr := range domain.Lifecycle() {
		for _, from := range tr.From {
			if tr.Same {
				loops[from] = true
				continue
			}
			if e := string(from) + ">" + string(tr.To); !slices.Contains(wantEdges, e) {
				wantEdges = append(wantEdges, e)
			}
		}
	}
	if !slices.Equal(states, wantStates) {
		t.Errorf("states drawn %v, want %v", states, wantStates)
	}
	slices.Sort(edges)
	slices.Sort(wantEdges)
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("arrows drawn %v, want %v", edges, wantEdges)
	}
	for s := range loops {
		if !strings.Contains(titles[string(s)], "without moving") {
			t.Errorf("state %s takes commands without moving, its title says %q", s, titles[string(s)])
		}
	}
}
