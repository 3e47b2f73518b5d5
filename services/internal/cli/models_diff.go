package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/trainer"
)

// diffSide is one model of `models diff`.
type diffSide struct {
	ID          string            `json:"id"`
	Version     string            `json:"version"`
	CreatedAt   time.Time         `json:"created_at"`
	Meta        map[string]string `json:"meta,omitempty"`
	Lineage     *trainer.Lineage  `json:"lineage,omitempty"`
	Examples    int               `json:"examples"`
	fields      map[string][]string
	labelCounts map[string]map[string]int
	heldOut     map[string]*classify.FieldReport
}

// classDiff compares one label's held-out precision and recall.
type classDiff struct {
	Label      string  `json:"label"`
	PrecisionA float64 `json:"precision_a"`
	PrecisionB float64 `json:"precision_b"`
	RecallA    float64 `json:"recall_a"`
	RecallB    float64 `json:"recall_b"`
	SupportA   int     `json:"support_a"`
	SupportB   int     `json:"support_b"`
	ExamplesA  int     `json:"train_examples_a"`
	ExamplesB  int     `json:"train_examples_b"`
}

// fieldDiff compares one field of two models.
type fieldDiff struct {
	Field string `json:"field"`
	// Source says where the figures come from: "holdout" (the trainer's
	// time-held-out window, recorded in the lineage) or "cv" (the model's
	// own cross-validation); the two models' windows differ.
	SourceA   string      `json:"source_a"`
	SourceB   string      `json:"source_b"`
	AccuracyA float64     `json:"accuracy_a"`
	AccuracyB float64     `json:"accuracy_b"`
	MacroF1A  float64     `json:"macro_f1_a"`
	MacroF1B  float64     `json:"macro_f1_b"`
	NA        int         `json:"n_a"`
	NB        int         `json:"n_b"`
	Added     []string    `json:"labels_added,omitempty"`
	Removed   []string    `json:"labels_removed,omitempty"`
	Classes   []classDiff `json:"classes,omitempty"`
}

type modelDiff struct {
	A      diffSide    `json:"a"`
	B      diffSide    `json:"b"`
	Fields []fieldDiff `json:"fields"`
}

func loadDiffSide(ctx context.Context, st *modelstore.Store, ref string) (diffSide, error) {
	id, err := resolveModelID(ctx, st, ref)
	if err != nil {
		return diffSide{}, err
	}
	b, info, err := st.Load(ctx, id)
	if err != nil {
		return diffSide{}, err
	}
	m, err := classify.Load(bytes.NewReader(b))
	if err != nil {
		return diffSide{}, fmt.Errorf("stored model %s: %w", shortID(id), err)
	}
	lin, _, err := trainer.LoadLineage(ctx, st, id)
	if err != nil {
		return diffSide{}, err
	}
	md := m.Metadata()
	s := diffSide{ID: id, Version: info.Version, CreatedAt: info.CreatedAt, Meta: info.Meta, Lineage: lin,
		Examples: md.Training.Examples, fields: map[string][]string{}, labelCounts: md.Training.LabelCounts, heldOut: map[string]*classify.FieldReport{}}
	for _, f := range md.Fields {
		s.fields[f.Name] = f.Labels
		if f.HeldOut != nil {
			s.heldOut[f.Name] = f.HeldOut
		}
	}
	if lin != nil {
		for _, r := range lin.Holdout {
			s.heldOut[r.Field] = r
		}
	}
	return s, nil
}

func (s diffSide) source(field string) string {
	if s.Lineage != nil {
		for _, r := range s.Lineage.Holdout {
			if r.Field == field {
				return "holdout"
			}
		}
	}
	if s.heldOut[field] != nil {
		return "cv"
	}
	return "none"
}

// modelsDiff compares two stored models: data window, tickets, lineage,
// and per field the held-out quality, per-class precision and recall and
// the labels one has and the other lacks.
func modelsDiff(ctx context.Context, st *modelstore.Store, refA, refB string, asJSON bool, w io.Writer) error {
	a, err := loadDiffSide(ctx, st, refA)
	if err != nil {
		return err
	}
	b, err := loadDiffSide(ctx, st, refB)
	if err != nil {
		return err
	}
	d := modelDiff{A: a, B: b}
	var names []string
	for f := range a.fields {
		names = append(names, f)
	}
	for f := range b.fields {
		if !slices.Contains(names, f) {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	for _, f := range names {
		fd := fieldDiff{Field: f, SourceA: a.source(f), SourceB: b.source(f)}
		for _, l := range b.fields[f] {
			if !slices.Contains(a.fields[f], l) {
				fd.Added = append(fd.Added, l)
			}
		}
		for _, l := range a.fields[f] {
			if !slices.Contains(b.fields[f], l) {
				fd.Removed = append(fd.Removed, l)
			}
		}
		ra, rb := a.heldOut[f], b.heldOut[f]
		classes := map[string]*classDiff{}
		get := func(l string) *classDiff {
			if classes[l] == nil {
				classes[l] = &classDiff{Label: l, ExamplesA: a.labelCounts[f][l], ExamplesB: b.labelCounts[f][l]}
			}
			return classes[l]
		}
		if ra != nil {
			fd.AccuracyA, fd.MacroF1A, fd.NA = ra.Accuracy, ra.MacroF1, ra.N
			for _, c := range ra.Classes {
				cd := get(c.Label)
				cd.PrecisionA, cd.RecallA, cd.SupportA = c.Precision, c.Recall, c.Support
			}
		}
		if rb != nil {
			fd.AccuracyB, fd.MacroF1B, fd.NB = rb.Accuracy, rb.MacroF1, rb.N
			for _, c := range rb.Classes {
				cd := get(c.Label)
				cd.PrecisionB, cd.RecallB, cd.SupportB = c.Precision, c.Recall, c.Support
			}
		}
		for _, l := range append(slices.Clone(a.fields[f]), b.fields[f]...) {
			get(l)
		}
		for _, c := range classes {
			fd.Classes = append(fd.Classes, *c)
		}
		sort.Slice(fd.Classes, func(i, j int) bool { return fd.Classes[i].Label < fd.Classes[j].Label })
		d.Fields = append(d.Fields, fd)
	}
	if asJSON {
		return writeJSON(w, d)
	}
	return d.print(w)
}

func (d modelDiff) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\tA\tB\n")
	fmt.Fprintf(tw, "model\t%s\t%s\n", shortID(d.A.ID), shortID(d.B.ID))
	fmt.Fprintf(tw, "version\t%s\t%s\n", d.A.Version, d.B.Version)
	fmt.Fprintf(tw, "created\t%s\t%s\n", d.A.CreatedAt.UTC().Format(time.RFC3339), d.B.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "training tickets\t%d\t%d\n", d.A.Examples, d.B.Examples)
	lin := func(s diffSide, what func(*trainer.Lineage) string, meta string) string {
		if s.Lineage != nil {
			return what(s.Lineage)
		}
		if v := s.Meta[meta]; v != "" {
			return v
		}
		return "-"
	}
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }
	rows := []struct {
		name string
		f    func(*trainer.Lineage) string
		meta string
	}{
		{"data window", func(l *trainer.Lineage) string { return day(l.DataFrom) + " .. " + day(l.DataThrough) }, "data_through"},
		{"held out", func(l *trainer.Lineage) string {
			return fmt.Sprintf("%s .. %s (%d)", day(l.HoldoutFrom), day(l.HoldoutThrough), l.HoldoutTickets)
		}, ""},
		{"parent", func(l *trainer.Lineage) string { return shortOr(l.Parent, "none (first model)") }, "parent"},
		{"gate", func(l *trainer.Lineage) string { return gateLine(l) }, "gate"},
		{"outcome", func(l *trainer.Lineage) string { return l.Outcome }, ""},
		{"source", func(*trainer.Lineage) string { return "trainer" }, "source"},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, lin(d.A, r.f, r.meta), lin(d.B, r.f, r.meta))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range d.Fields {
		fmt.Fprintf(w, "\n%s: accuracy %.3f -> %.3f (%+.3f), macro-F1 %.3f -> %.3f  [A: %s n=%d, B: %s n=%d]\n",
			f.Field, f.AccuracyA, f.AccuracyB, f.AccuracyB-f.AccuracyA, f.MacroF1A, f.MacroF1B, f.SourceA, f.NA, f.SourceB, f.NB)
		if len(f.Added) > 0 {
			fmt.Fprintf(w, "  labels added:   %v\n", f.Added)
		}
		if len(f.Removed) > 0 {
			fmt.Fprintf(w, "  labels removed: %v\n", f.Removed)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  LABEL\tPRECISION A\tB\tRECALL A\tB\tTRAIN A\tB")
		for _, c := range f.Classes {
			fmt.Fprintf(tw, "  %s\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\n", c.Label, c.PrecisionA, c.PrecisionB, c.RecallA, c.RecallB, c.ExamplesA, c.ExamplesB)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "\n(holdout: the trainer's most recent held-out weeks at training time; cv: the model's own cross-validation. The two models' windows differ.)")
	return err
}

func gateLine(l *trainer.Lineage) string {
	s := "failed"
	if l.Gate.Pass {
		s = "passed"
	}
	return s + " vs " + l.Gate.Against
}

func shortOr(id, none string) string {
	if id == "" {
		return none
	}
	return shortID(id)
}
