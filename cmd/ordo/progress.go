package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress reports a long pass over the event log on stderr: a redrawn bar
// with events/s and ETA on a terminal, a plain line every few seconds
// otherwise (logs, CI), so pipes never fill with carriage returns.
type progress struct {
	w        io.Writer
	tty      bool
	label    string
	head     uint64 // $all position the pass ends at, for the fraction and ETA
	start    time.Time
	last     time.Time
	every    time.Duration
	startPos uint64
}

func newProgress(w io.Writer, label string, from, head uint64) *progress {
	p := &progress{w: w, label: label, head: head, start: time.Now(), startPos: from}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	p.every = 5 * time.Second
	if p.tty {
		p.every = 200 * time.Millisecond
	}
	return p
}

// update reports that the pass has reached $all position pos after events
// events; it prints only every so often.
func (p *progress) update(pos uint64, events int64) {
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	p.print(pos, events, false)
}

// finish prints the final state and ends the bar's line.
func (p *progress) finish(pos uint64, events int64) {
	p.print(pos, events, true)
}

func (p *progress) print(pos uint64, events int64, final bool) {
	elapsed := time.Since(p.start)
	rate := float64(events) / max(elapsed.Seconds(), 1e-9)
	frac := 1.0
	if p.head > p.startPos && pos < p.head {
		frac = float64(pos-min(pos, p.startPos)) / float64(p.head-p.startPos)
	}
	eta := "-"
	if frac > 0 && frac < 1 {
		eta = (time.Duration(float64(elapsed)/frac) - elapsed).Round(time.Second).String()
	}
	if final {
		eta = "done"
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %d events, %.0f%%, %.0f events/s, ETA %s\n", p.label, events, 100*frac, rate, eta)
		return
	}
	const width = 30
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%% %d events %.0f/s ETA %s   ", p.label, bar, 100*frac, events, rate, eta)
	if final {
		fmt.Fprintln(p.w)
	}
}
