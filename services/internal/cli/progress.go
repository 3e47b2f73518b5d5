package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress reports long work on stderr: one line rewritten in place on a
// terminal (at most 10 times a second), plain lines every few seconds
// otherwise (logs, CI), and always a final line.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	every    time.Duration
	last     time.Time
	lastLine string
	now      func() time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, tty: isTerminal(w), now: time.Now}
	p.every = 5 * time.Second
	if p.tty {
		p.every = 100 * time.Millisecond
	}
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update shows a progress line if enough time has passed since the last.
func (p *progress) update(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.last.IsZero() && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	line := fmt.Sprintf(format, args...)
	if p.tty {
		pad := max(len(p.lastLine)-len(line), 0)
		fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
		p.lastLine = line
		return
	}
	fmt.Fprintln(p.w, line)
}

// done prints the final line (always) and ends the in-place line.
func (p *progress) done(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	if p.tty {
		pad := max(len(p.lastLine)-len(line), 0)
		fmt.Fprintf(p.w, "\r%s%*s\n", line, pad, "")
		p.lastLine = ""
		return
	}
	fmt.Fprintln(p.w, line)
}

// eta estimates the time left from the fraction done and the time spent.
func eta(elapsed time.Duration, frac float64) string {
	if frac <= 0.001 || frac >= 1 {
		return "?"
	}
	left := time.Duration(float64(elapsed) * (1 - frac) / frac)
	return left.Round(time.Second).String()
}
