package report

import (
	"fmt"
	"io"
	"math"
)

// Point is one (x, y) sample of a series.
type Point struct{ X, Y float64 }

// Series is a named polyline.
type Series struct {
	Name   string
	Points []Point
}

// Marker is a labelled vertical reference line (a chosen threshold, say).
type Marker struct {
	X     float64
	Label string
}

// LineChart plots series over fixed [0,1]×[0,1] axes, which is what every
// curve of a classifier evaluation (coverage, precision, probability) spans.
// Points with a non-finite coordinate are skipped.
type LineChart struct {
	Title, XLabel, YLabel string
	Series                []Series
	Markers               []Marker
}

// WriteSVG writes the chart as a standalone SVG document.
func (c LineChart) WriteSVG(w io.Writer) error {
	const width, height = 640, 440
	s := newSVG(w, width, height, c.Title)
	f := frame{left: 70, top: 40, width: width - 200, height: height - 100, x0: 0, x1: 1, y0: 0, y1: 1}
	f.axes(s, c.XLabel, c.YLabel, 0.1, 0.1)
	for _, m := range c.Markers {
		if !finite(m.X) || m.X < 0 || m.X > 1 {
			continue
		}
		s.line(f.px(m.X), f.top, f.px(m.X), f.top+f.height, "#999", 1, `stroke-dasharray="4 3"`)
		s.text(f.px(m.X)+3, f.top+12, "start", `font-size="10" fill="#555"`, m.Label)
	}
	for i, ser := range c.Series {
		col := palette[i%len(palette)]
		s.printf(`<polyline fill="none" stroke="%s" stroke-width="2" points="`, col)
		for _, p := range ser.Points {
			if !finite(p.X) || !finite(p.Y) {
				continue
			}
			s.printf("%.1f,%.1f ", f.px(clamp01(p.X)), f.py(clamp01(p.Y)))
		}
		s.printf(`"/>` + "\n")
		ly := f.top + 10 + float64(i)*18
		s.line(f.left+f.width+12, ly, f.left+f.width+32, ly, col, 2, "")
		s.text(f.left+f.width+36, ly+4, "start", "", ser.Name)
	}
	return s.close()
}

func clamp01(v float64) float64 { return math.Max(0, math.Min(1, v)) }

// Heatmap draws a square matrix of counts, rows "true" and columns
// "predicted" for a confusion matrix. Each row is shaded by its own total,
// so small classes stay readable; the diagonal is outlined.
type Heatmap struct {
	Title, RowLabel, ColLabel string
	Labels                    []string
	Values                    [][]int
}

// WriteSVG writes the heat map as a standalone SVG document. Labels are
// truncated to 24 characters; beyond 60 classes the cell numbers are
// omitted (the shading still shows the structure).
func (h Heatmap) WriteSVG(w io.Writer) error {
	n := len(h.Labels)
	if len(h.Values) != n {
		return fmt.Errorf("report: heat map has %d labels but %d rows", n, len(h.Values))
	}
	for i, row := range h.Values {
		if len(row) != n {
			return fmt.Errorf("report: heat map row %d has %d values, want %d", i, len(row), n)
		}
	}
	cell := 36.0
	switch {
	case n > 40:
		cell = 12
	case n > 15:
		cell = 22
	}
	margin := 170.0
	width := int(margin + cell*float64(n) + 40)
	height := int(margin + cell*float64(n) + 60)
	s := newSVG(w, width, height, h.Title)
	for i, row := range h.Values {
		total := 0
		for _, v := range row {
			total += v
		}
		y := margin + float64(i)*cell
		s.text(margin-6, y+cell/2+4, "end", `font-size="10"`, short(h.Labels[i], 24))
		for j, v := range row {
			x := margin + float64(j)*cell
			frac := 0.0
			if total > 0 {
				frac = float64(v) / float64(total)
			}
			fill := shade(frac, i == j)
			extra := `stroke="#fff"`
			if i == j {
				extra = `stroke="#333"`
			}
			s.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" %s><title>%s → %s: %d</title></rect>`+"\n",
				x, y, cell, cell, fill, extra, esc(h.Labels[i]), esc(h.Labels[j]), v)
			if n <= 60 && v > 0 && cell >= 20 {
				col := "#000"
				if frac > 0.6 {
					col = "#fff"
				}
				s.text(x+cell/2, y+cell/2+4, "middle", fmt.Sprintf(`font-size="9" fill="%s"`, col), fmt.Sprint(v))
			}
		}
	}
	for j, l := range h.Labels {
		x := margin + float64(j)*cell + cell/2
		s.printf(`<text x="%.1f" y="%.1f" text-anchor="start" font-size="10" transform="rotate(-60 %.1f %.1f)">%s</text>`+"\n",
			x, margin-6, x, margin-6, esc(short(l, 24)))
	}
	s.text(margin+cell*float64(n)/2, margin+cell*float64(n)+28, "middle", "", h.ColLabel)
	s.text(12, margin-12, "start", "", h.RowLabel+" ↓")
	return s.close()
}

func short(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// shade maps a fraction to a colour: blue on the diagonal, red off it.
func shade(frac float64, diag bool) string {
	if frac <= 0 {
		return "#f7f7f7"
	}
	a := 0.12 + 0.88*clamp01(frac)
	if diag {
		return fmt.Sprintf("rgb(%d,%d,%d)", lerp(239, 31, a), lerp(243, 119, a), lerp(255, 180, a))
	}
	return fmt.Sprintf("rgb(%d,%d,%d)", lerp(255, 214, a), lerp(240, 39, a), lerp(240, 40, a))
}

func lerp(a, b int, t float64) int { return int(math.Round(float64(a) + (float64(b)-float64(a))*t)) }

// Bin is one confidence bin of a reliability diagram.
type Bin struct {
	Lo, Hi     float64
	Count      int
	Confidence float64 // mean confidence of the predictions in the bin
	Accuracy   float64 // fraction of them that were right
}

// Reliability draws a reliability diagram: per confidence bin, a bar of
// the observed accuracy against the diagonal of perfect calibration, the
// gap to the bin's mean confidence shaded, and the share of predictions
// per bin along the bottom.
type Reliability struct {
	Title string
	Bins  []Bin
	// ECE is printed in the legend when positive.
	ECE float64
}

// WriteSVG writes the diagram as a standalone SVG document.
func (r Reliability) WriteSVG(w io.Writer) error {
	const width, height = 560, 480
	s := newSVG(w, width, height, r.Title)
	f := frame{left: 70, top: 40, width: width - 110, height: height - 130, x0: 0, x1: 1, y0: 0, y1: 1}
	f.axes(s, "confidence", "accuracy", 0.1, 0.1)
	total := 0
	for _, b := range r.Bins {
		total += b.Count
	}
	for _, b := range r.Bins {
		if b.Count == 0 || !finite(b.Lo) || !finite(b.Hi) {
			continue
		}
		x, bw := f.px(clamp01(b.Lo)), f.px(clamp01(b.Hi))-f.px(clamp01(b.Lo))
		acc, conf := clamp01(b.Accuracy), clamp01(b.Confidence)
		s.rect(x, f.py(acc), bw, f.py(0)-f.py(acc), "#1f77b4", `fill-opacity="0.8" stroke="#fff"`)
		lo, hi := math.Min(acc, conf), math.Max(acc, conf)
		s.rect(x, f.py(hi), bw, f.py(lo)-f.py(hi), "#d62728", `fill-opacity="0.3"`)
		share := float64(b.Count) / float64(max(total, 1))
		s.rect(x, f.top+f.height+48, bw, 30*share, "#7f7f7f", `stroke="#fff"`)
	}
	s.line(f.px(0), f.py(0), f.px(1), f.py(1), "#444", 1, `stroke-dasharray="5 4"`)
	s.text(f.left, f.top+f.height+44, "start", `font-size="10" fill="#555"`, fmt.Sprintf("share of %d predictions per bin", total))
	legend := "bars: accuracy · red: gap to confidence"
	if r.ECE > 0 {
		legend += fmt.Sprintf(" · ECE %.3f", r.ECE)
	}
	s.text(f.left+4, f.top+14, "start", `font-size="11"`, legend)
	return s.close()
}
