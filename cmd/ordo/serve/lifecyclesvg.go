package serve

import (
	"fmt"
	"html"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/ordo-dev/ordo/domain"
)

// The operator's page draws the lifecycle from the domain's transition
// table (domain.Lifecycle), so it cannot drift from the code; only where
// each state sits is chosen here. A state added to the domain without a
// place here still appears, in a row of its own.
var statePlace = map[domain.State][2]float64{ // column, row
	domain.StatePlaced:          {0, 1},
	domain.StateAwaitingPayment: {1, 1},
	domain.StatePaid:            {2, 1},
	domain.StateShipped:         {3, 1},
	domain.StateDelivered:       {4, 1},
	domain.StateCompleted:       {5, 1},
	domain.StateCancelled:       {1.5, 2},
	domain.StateRefunded:        {3.5, 0},
}

const (
	svgColW, svgRowH = 165.0, 95.0
	svgBoxW, svgBoxH = 136.0, 38.0
	svgLeft, svgTop  = 70.0, 30.0
)

type svgEdge struct {
	from, to domain.State
	commands []string
}

// lifecycleEdges merges the table into one edge per (from, to) pair with
// the commands that take it, in table order.
func lifecycleEdges() []svgEdge {
	var out []svgEdge
	for _, t := range domain.Lifecycle() {
		for _, from := range t.From {
			to := t.To
			if t.Same {
				to = from
			}
			i := slices.IndexFunc(out, func(e svgEdge) bool { return e.from == from && e.to == to })
			if i < 0 {
				out = append(out, svgEdge{from: from, to: to})
				i = len(out) - 1
			}
			out[i].commands = append(out[i].commands, t.Command)
		}
	}
	return out
}

func stateCenter(places map[domain.State][2]float64, s domain.State) (float64, float64) {
	p := places[s]
	return svgLeft + p[0]*svgColW + svgBoxW/2, svgTop + p[1]*svgRowH + svgBoxH/2
}

// clip moves (x, y), the centre of a state's box, towards (tx, ty) until it
// leaves the box, so arrows start and end at the borders.
func clip(x, y, tx, ty, margin float64) (float64, float64) {
	dx, dy := tx-x, ty-y
	if dx == 0 && dy == 0 {
		return x, y
	}
	s := math.Inf(1)
	if dx != 0 {
		s = math.Min(s, (svgBoxW/2+margin)/math.Abs(dx))
	}
	if dy != 0 {
		s = math.Min(s, (svgBoxH/2+margin)/math.Abs(dy))
	}
	return x + dx*s, y + dy*s
}

// lifecycleSVG renders the lifecycle: one <g class="state"
// data-state="…"> per state (the page marks the order's with the class
// "current"), one arrow per transition with the commands that take it as
// its title, and the commands a state accepts without moving as the
// state's title.
func lifecycleSVG() string {
	places := map[domain.State][2]float64{}
	extra := 0.0
	for _, s := range domain.States() {
		if p, ok := statePlace[s]; ok {
			places[s] = p
			continue
		}
		places[s] = [2]float64{extra, 3}
		extra++
	}
	rows := 0.0
	for _, p := range places {
		rows = math.Max(rows, p[1])
	}
	width, height := svgLeft+6*svgColW, svgTop*2+rows*svgRowH+svgBoxH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="lifecycle" viewBox="0 0 %.0f %.0f" role="img" aria-label="order lifecycle">`, width, height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>`)
	selfLoops := map[domain.State][]string{}
	for _, e := range lifecycleEdges() {
		if e.from == e.to {
			selfLoops[e.from] = append(selfLoops[e.from], e.commands...)
			continue
		}
		tx, ty := stateCenter(places, e.to)
		var x1, y1 float64
		if e.from == domain.StateNone {
			x1, y1 = tx-svgBoxW/2-50, ty
			fmt.Fprintf(&b, `<circle class="start" cx="%.1f" cy="%.1f" r="6"/>`, x1, y1)
		} else {
			x1, y1 = stateCenter(places, e.from)
			x1, y1 = clip(x1, y1, tx, ty, 0)
		}
		x2, y2 := clip(tx, ty, x1, y1, 2)
		fmt.Fprintf(&b, `<g class="edge" data-from="%s" data-to="%s"><title>%s</title><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" marker-end="url(#arrow)"/></g>`,
			html.EscapeString(string(e.from)), html.EscapeString(string(e.to)), html.EscapeString(strings.Join(e.commands, ", ")), x1, y1, x2, y2)
	}
	for _, s := range domain.States() {
		cx, cy := stateCenter(places, s)
		title := string(s)
		if loops := selfLoops[s]; len(loops) > 0 {
			title += " (takes without moving: " + strings.Join(loops, ", ") + ")"
		}
		fmt.Fprintf(&b, `<g class="state" data-state="%s"><title>%s</title><rect x="%.1f" y="%.1f" width="%.0f" height="%.0f" rx="8"/><text x="%.1f" y="%.1f">%s</text></g>`,
			html.EscapeString(string(s)), html.EscapeString(title), cx-svgBoxW/2, cy-svgBoxH/2, svgBoxW, svgBoxH, cx, cy+5, html.EscapeString(string(s)))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func serveLifecycleSVG(svg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(svg))
	}
}
