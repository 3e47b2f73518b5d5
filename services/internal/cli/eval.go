package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/report"
)

func init() {
	Register("eval", "measure a model on a labelled JSONL file; optional SVG plots", runEval)
}

// precisionTargets are the rows of the coverage-at-precision table: the
// precisions an operator typically asks for before letting a field apply.
var precisionTargets = []float64{0.80, 0.85, 0.90, 0.95, 0.98, 0.99}

// coverageRow says how many tickets a field could handle at a precision.
type coverageRow struct {
	Precision float64 `json:"precision"`
	Reached   bool    `json:"reached"`
	Threshold float64 `json:"threshold,omitempty"`
	Coverage  float64 `json:"coverage"`
}

type evalField struct {
	*classify.FieldReport
	CoverageTable []coverageRow `json:"coverage_at_precision"`
}

type evalOutput struct {
	Model    string      `json:"model"`
	ModelID  string      `json:"model_id"`
	Data     string      `json:"data"`
	Examples int         `json:"examples"`
	Fields   []evalField `json:"fields"`
	Plots    []string    `json:"plots,omitempty"`
}

func coverageTable(r *classify.FieldReport) []coverageRow {
	rows := make([]coverageRow, 0, len(precisionTargets))
	for _, p := range precisionTargets {
		thr, cov, ok := r.ThresholdForPrecision(p)
		rows = append(rows, coverageRow{Precision: p, Reached: ok, Threshold: thr, Coverage: cov})
	}
	return rows
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "eval"
	f := newFlags(cmd, "--model MODEL --data FILE.jsonl [--json] [--plots DIR]",
		"Evaluate a model on labelled tickets: accuracy, macro-F1, per-class precision and recall,\n"+
			"expected calibration error and the coverage at each target precision. MODEL is a file,\n"+
			"a stored model id (prefix), or empty for the promoted model.", stdout)
	var co connOpts
	co.register(f)
	model := f.String("model", "", "model file or stored id (default: the promoted model)")
	data := f.String("data", "", "labelled JSONL file (required)")
	plots := f.String("plots", "", "write SVG plots (coverage–precision, confusion, reliability) into this directory")
	asJSON := f.Bool("json", false, "print the full report as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	if *data == "" {
		return usagef(cmd, "eval: --data is required")
	}
	examples, err := classify.LoadJSONL(*data)
	if err != nil {
		return err
	}
	lm, err := loadModel(ctx, *model, &co)
	if err != nil {
		return err
	}
	prog := newProgress(stderr)
	prog.update("evaluating on %d tickets", len(examples))
	rep := classify.Evaluate(lm.model, examples)
	out := evalOutput{Model: lm.source, ModelID: lm.model.ID(), Data: *data, Examples: len(examples)}
	for _, fr := range rep.Fields {
		out.Fields = append(out.Fields, evalField{FieldReport: fr, CoverageTable: coverageTable(fr)})
	}
	if *plots != "" {
		if out.Plots, err = writePlots(*plots, rep); err != nil {
			return err
		}
	}
	prog.done("evaluated %d tickets", len(examples))
	if *asJSON {
		return writeJSON(stdout, out)
	}
	return printEval(stdout, out)
}

func printEval(w io.Writer, out evalOutput) error {
	fmt.Fprintf(w, "model %s (%s) on %s: %d tickets\n", shortID(out.ModelID), out.Model, out.Data, out.Examples)
	for _, f := range out.Fields {
		fmt.Fprintf(w, "\n== %s (n=%d)\n", f.Field, f.N)
		if f.N == 0 {
			fmt.Fprintln(w, "no labelled tickets for this field")
			continue
		}
		fmt.Fprintf(w, "accuracy %.4f  macro-F1 %.4f", f.Accuracy, f.MacroF1)
		if f.MultiLabel {
			fmt.Fprintf(w, "  micro-F1 %.4f (accuracy = exact tag set)", f.MicroF1)
		}
		fmt.Fprintf(w, "  ECE %.4f\n", f.ECE)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "label\tprecision\trecall\tF1\tsupport\t")
		for _, c := range f.Classes {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\t\n", c.Label, c.Precision, c.Recall, c.F1, c.Support)
		}
		tw.Flush()
		fmt.Fprintln(w, "coverage at precision:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "precision\tthreshold\tcoverage\t")
		for _, r := range f.CoverageTable {
			if !r.Reached {
				fmt.Fprintf(tw, "%.0f%%\t-\tnot reached\t\n", 100*r.Precision)
				continue
			}
			fmt.Fprintf(tw, "%.0f%%\t%.3f\t%.1f%%\t\n", 100*r.Precision, r.Threshold, 100*r.Coverage)
		}
		tw.Flush()
	}
	if len(out.Plots) > 0 {
		fmt.Fprintf(w, "\nplots:\n")
		for _, p := range out.Plots {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
	return nil
}

// writePlots draws per field the coverage–precision curve, the reliability
// diagram and (single-label fields) the confusion matrix.
func writePlots(dir string, rep *classify.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	var files []string
	write := func(name string, draw func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		fh, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("plots: %w", err)
		}
		if err := draw(fh); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return fmt.Errorf("plots: %w", err)
		}
		files = append(files, path)
		return nil
	}
	for _, fr := range rep.Fields {
		if fr.N == 0 {
			continue
		}
		pts := make([]report.Point, 0, len(fr.Curve))
		for _, p := range fr.Curve {
			if p.Count > 0 {
				pts = append(pts, report.Point{X: p.Coverage, Y: p.Precision})
			}
		}
		var marks []report.Marker
		if _, cov, ok := fr.ThresholdForPrecision(0.95); ok {
			marks = append(marks, report.Marker{X: cov, Label: "95% precision"})
		}
		chart := report.LineChart{Title: fr.Field + ": precision against coverage", XLabel: "coverage (share handled)",
			YLabel: "precision", Series: []report.Series{{Name: fr.Field, Points: pts}}, Markers: marks}
		if err := write(fr.Field+"-coverage.svg", chart.WriteSVG); err != nil {
			return nil, err
		}
		bins := make([]report.Bin, 0, len(fr.Reliability))
		for _, b := range fr.Reliability {
			bins = append(bins, report.Bin{Lo: b.Lo, Hi: b.Hi, Count: b.Count, Confidence: b.Confidence, Accuracy: b.Accuracy})
		}
		rel := report.Reliability{Title: fr.Field + ": reliability", Bins: bins, ECE: fr.ECE}
		if err := write(fr.Field+"-reliability.svg", rel.WriteSVG); err != nil {
			return nil, err
		}
		if len(fr.Confusion) > 0 && len(fr.Confusion) == len(fr.Classes) {
			labels := make([]string, len(fr.Classes))
			for i, c := range fr.Classes {
				labels[i] = c.Label
			}
			hm := report.Heatmap{Title: fr.Field + ": confusion matrix", RowLabel: "true", ColLabel: "predicted",
				Labels: labels, Values: fr.Confusion}
			if err := write(fr.Field+"-confusion.svg", hm.WriteSVG); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}
