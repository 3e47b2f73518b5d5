// Package report draws the plots of a model evaluation as standalone SVG
// documents: a line chart (the coverage–precision curve), a heat map (the
// confusion matrix) and a reliability diagram (calibration). It is plain Go
// text generation with no dependency, so the operator CLI stays a static
// binary; every document is well-formed XML that browsers render as is.
package report

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// svg accumulates a document; the first write error is kept and reported
// by close.
type svg struct {
	w   *bufio.Writer
	err error
}

func newSVG(w io.Writer, width, height int, title string) *svg {
	s := &svg{w: bufio.NewWriter(w)}
	s.printf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	s.printf("<title>%s</title>\n", esc(title))
	s.printf(`<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", width, height)
	s.text(float64(width)/2, 20, "middle", "font-size=\"15\" font-weight=\"bold\"", title)
	return s
}

func (s *svg) printf(format string, args ...any) {
	if s.err != nil {
		return
	}
	_, s.err = fmt.Fprintf(s.w, format, args...)
}

func (s *svg) text(x, y float64, anchor, attrs, text string) {
	s.printf(`<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, attrs, esc(text))
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, width float64, extra string) {
	s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f" %s/>`+"\n", x1, y1, x2, y2, stroke, width, extra)
}

func (s *svg) rect(x, y, w, h float64, fill, extra string) {
	s.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" %s/>`+"\n", x, y, max(w, 0), max(h, 0), fill, extra)
}

func (s *svg) close() error {
	s.printf("</svg>\n")
	if s.err != nil {
		return fmt.Errorf("report: write svg: %w", s.err)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("report: write svg: %w", err)
	}
	return nil
}

// esc escapes text for XML character data and attribute values.
func esc(s string) string {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return ""
	}
	return b.String()
}

// frame is a plot area with linear axes from [x0,x1]×[y0,y1] to pixels.
type frame struct {
	left, top, width, height float64
	x0, x1, y0, y1           float64
}

func (f frame) px(x float64) float64 { return f.left + (x-f.x0)/(f.x1-f.x0)*f.width }
func (f frame) py(y float64) float64 { return f.top + f.height - (y-f.y0)/(f.y1-f.y0)*f.height }

// axes draws the grid, ticks every step and the axis labels.
func (f frame) axes(s *svg, xlabel, ylabel string, xstep, ystep float64) {
	for x := f.x0; x <= f.x1+1e-9; x += xstep {
		s.line(f.px(x), f.top, f.px(x), f.top+f.height, "#e5e5e5", 1, "")
		s.text(f.px(x), f.top+f.height+16, "middle", "", trimFloat(x))
	}
	for y := f.y0; y <= f.y1+1e-9; y += ystep {
		s.line(f.left, f.py(y), f.left+f.width, f.py(y), "#e5e5e5", 1, "")
		s.text(f.left-6, f.py(y)+4, "end", "", trimFloat(y))
	}
	s.rect(f.left, f.top, f.width, f.height, "none", `stroke="#444"`)
	s.text(f.left+f.width/2, f.top+f.height+36, "middle", "", xlabel)
	s.printf(`<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		f.left-42, f.top+f.height/2, f.left-42, f.top+f.height/2, esc(ylabel))
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// palette gives distinguishable series colours.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}
