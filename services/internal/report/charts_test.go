package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// wellFormed decodes the whole document and returns its element names.
func wellFormed(t *testing.T, b []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	names := map[string]int{}
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			names[se.Name.Local]++
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return names
}

func TestLineChart(t *testing.T) {
	var buf bytes.Buffer
	c := LineChart{Title: `group <coverage> & "precision"`, XLabel: "coverage", YLabel: "precision",
		Series:  []Series{{Name: "group", Points: []Point{{0, 1}, {0.5, 0.9}, {math.NaN(), 1}, {1, 0.7}}}},
		Markers: []Marker{{X: 0.5, Label: "p≥0.9"}}}
	if err := c.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	names := wellFormed(t, buf.Bytes())
	if names["polyline"] != 1 {
		t.Fatalf("want one polyline, got %v", names)
	}
	if strings.Contains(buf.String(), "NaN") {
		t.Fatal("NaN leaked into the SVG")
	}
}

func TestHeatmap(t *testing.T) {
	var buf bytes.Buffer
	h := Heatmap{Title: "confusion", RowLabel: "true", ColLabel: "predicted", Labels: []string{"a<b", "c&d", "e"},
		Values: [][]int{{5, 1, 0}, {0, 3, 2}, {0, 0, 0}}}
	if err := h.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	names := wellFormed(t, buf.Bytes())
	if names["rect"] < 9 {
		t.Fatalf("want at least 9 cells, got %v", names)
	}
	bad := Heatmap{Labels: []string{"a"}, Values: [][]int{{1, 2}}}
	if err := bad.WriteSVG(io.Discard); err == nil {
		t.Fatal("ragged matrix accepted")
	}
}

func TestReliability(t *testing.T) {
	var buf bytes.Buffer
	r := Reliability{Title: "calibration", ECE: 0.042, Bins: []Bin{{0, 0.5, 0, 0, 0}, {0.5, 0.75, 10, 0.6, 0.5}, {0.75, 1, 30, 0.9, 0.93}}}
	if err := r.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, buf.Bytes())
	if !strings.Contains(buf.String(), "ECE 0.042") {
		t.Fatal("ECE missing from legend")
	}
}
