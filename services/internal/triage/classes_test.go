package triage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
)

func TestParsePolicyClasses(t *testing.T) {
	p, err := ParsePolicy(`group=apply:p95, group[Billing]=suggest,group[ Sales, EU ]=apply:0.9,tags[a\]b\\c]=shadow,type[Question]=apply:p80`)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Classes["group"]["Billing"]; got != (FieldPolicy{Mode: Suggest}) {
		t.Errorf("Billing: %+v", got)
	}
	if got := p.Classes["group"]["Sales, EU"]; got != (FieldPolicy{Mode: Apply, Probability: 0.9}) {
		t.Errorf("Sales, EU: %+v", got)
	}
	if _, ok := p.Classes["tags"][`a]b\c`]; !ok {
		t.Errorf("escaped tag missing: %v", p.Classes["tags"])
	}
	if _, ok := p.Fields["type"]; ok {
		t.Error("a class setting added its field")
	}
	want := `group=apply:p95,group[Billing]=suggest,group[Sales, EU]=apply:0.9,type[Question]=apply:p80,tags[a\]b\\c]=shadow`
	if s := p.String(); s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
	if fp, own := p.For("group", "Other"); own || fp.TargetPrecision != 0.95 {
		t.Errorf("unlisted class: %+v %v", fp, own)
	}
	bad := map[string]string{
		"group[]=apply":                                 "empty",
		"group[Billing=apply":                           "unterminated",
		"group[x]=apply,group[x]=shadow":                "twice",
		"group[x]y=apply":                               "want field",
		"colour[x]=apply":                               "colour",
		"group[x]=maybe":                                "maybe",
		"group[" + strings.Repeat("x", 300) + "]=apply": "longer",
	}
	for in, part := range bad {
		if _, err := ParsePolicy(in); err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("ParsePolicy(%q) = %v, want an error naming %q", in, err, part)
		}
	}
}

func TestDecidePerClass(t *testing.T) {
	m := testModel(t)
	sure := m.Predict("", "the printer and the screen are broken") // Hardware
	open := &autotriagev1.Ticket{Id: 1}
	S := autotriagev1.Decision_DECISION_SUGGEST
	A := autotriagev1.Decision_DECISION_APPLY
	demoted := func(p Policy) Policy {
		p.Demoted = map[string]map[string]string{"group": {"Hardware": "live precision 10/40"}}
		return p
	}
	tests := []struct {
		name     string
		policy   string
		edit     func(Policy) Policy
		decision autotriagev1.Decision
		reason   string
	}{
		{"class suggest overrides field apply", "group=apply:0.5,group[Hardware]=suggest", nil, S, `class "Hardware": suggest mode`},
		{"class apply overrides field suggest", "group=suggest,group[Hardware]=apply:0.5", nil, A, `class "Hardware": confidence`},
		{"other class's setting does not apply", "group=apply:0.5,group[Billing]=suggest", nil, A, ">= threshold 0.500"},
		{"target resolved per class", "group=apply:p90", nil, A, `precision of "Hardware"`},
		{"demoted class suggests", "group=apply:0.5", demoted, S, "demoted to suggest by live precision: live precision 10/40"},
		{"demotion does not touch suggest mode", "group=suggest", demoted, S, "suggest mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				p = tt.edit(p)
			}
			var fp *autotriagev1.FieldPrediction
			for _, f := range p.Decide(m, open, sure) {
				if f.Field == "group" {
					fp = f
				}
			}
			if fp == nil || fp.Decision != tt.decision || !strings.Contains(fp.Reason, tt.reason) {
				t.Fatalf("got %v, want %v containing %q", fp, tt.decision, tt.reason)
			}
			if fp.Label != "Hardware" {
				t.Fatalf("label %q", fp.Label)
			}
		})
	}
}

// A class whose held-out curve reaches the target on too few predictions
// stays in suggest; one with enough is resolved; a report without class
// curves (an older artifact) falls back to the field's curve.
func TestResolveTargetPerClassEvidence(t *testing.T) {
	field := make([]classify.CurvePoint, 201)
	for s := range field {
		field[s] = classify.CurvePoint{Threshold: float64(s) / 200, Precision: 0.8 + 0.2*float64(s)/200, Count: 1000 - 4*s, Coverage: 1 - float64(s)/200}
	}
	rep := &classify.FieldReport{Field: "group", Curve: field, ClassCurves: []classify.ClassCurve{
		{Label: "rare", Support: 12, Steps: []int{0, 100, 190, 200}, Counts: []int{12, 10, 8, 0}, Hits: []int{9, 9, 8, 0}},
		{Label: "common", Support: 300, Steps: []int{0, 100, 150, 200}, Counts: []int{300, 200, 60, 0}, Hits: []int{240, 180, 59, 0}},
		{Label: "bad", Support: 300, Steps: []int{0, 200}, Counts: []int{300, 0}, Hits: []int{100, 0}},
	}}
	r := resolveTarget(rep, "rare", 0.95)
	if r.OK || !r.PerClass || r.Count != 8 || !strings.Contains(r.Why, "fewer than the 20") {
		t.Errorf("rare: %+v", r)
	}
	r = resolveTarget(rep, "common", 0.95)
	if !r.OK || r.Threshold != 0.75 || r.Count != 60 || r.Precision < 0.98 {
		t.Errorf("common: %+v", r)
	}
	r = resolveTarget(rep, "bad", 0.9)
	if r.OK || !strings.Contains(r.Why, "not reached by class") {
		t.Errorf("bad: %+v", r)
	}
	old := &classify.FieldReport{Field: "group", Curve: field}
	r = resolveTarget(old, "rare", 0.9)
	if !r.OK || r.PerClass || r.Threshold != 0.5 {
		t.Errorf("field fallback: %+v", r)
	}
}

var (
	tagModelOnce sync.Once
	tagModel     *classify.Model
	tagModelErr  error
)

// A tags field decides per selected tag: a tag's own setting or demotion
// holds the whole field back (a tag is never applied on another's
// strength), and the reason names the tag.
func TestDecideTagsPerClass(t *testing.T) {
	tagModelOnce.Do(func() {
		var ex []classify.Example
		for i := range 300 {
			body, tags := fmt.Sprintf("ticket %d: the printer jams", i), []string{"printer"}
			switch i % 3 {
			case 1:
				body, tags = fmt.Sprintf("ticket %d: invoice is wrong", i), []string{"invoice"}
			case 2:
				body, tags = fmt.Sprintf("ticket %d: invoice printer both", i), []string{"invoice", "printer"}
			}
			ex = append(ex, classify.Example{ID: fmt.Sprint(i), Body: body, Tags: tags, Group: "G"})
		}
		tagModel, tagModelErr = classify.Train(context.Background(), ex, classify.TrainOptions{Seed: 1, Folds: 2, Features: classify.FeatureOptions{HashBits: 12}})
	})
	if tagModelErr != nil {
		t.Fatal(tagModelErr)
	}
	m := tagModel
	both := m.Predict("", "invoice printer both")
	if f, _ := both.Field("tags"); len(f.Selected) != 2 {
		t.Fatalf("selected %v", f.Selected)
	}
	for _, tt := range []struct {
		policy   string
		demote   string
		decision autotriagev1.Decision
		reason   string
	}{
		{"tags=apply:0.3", "", autotriagev1.Decision_DECISION_APPLY, ">= threshold"},
		{"tags=apply:0.3,tags[invoice]=suggest", "", autotriagev1.Decision_DECISION_SUGGEST, `class "invoice": suggest mode`},
		{"tags=apply:0.3", "printer", autotriagev1.Decision_DECISION_SUGGEST, `class "printer" demoted`},
		{"tags=suggest,tags[printer]=apply:0.3,tags[invoice]=apply:0.3", "", autotriagev1.Decision_DECISION_APPLY, "class"},
		{"tags=apply:0.3,tags[printer]=shadow", "", autotriagev1.Decision_DECISION_SHADOW, `class "printer": shadow mode`},
	} {
		p, err := ParsePolicy(tt.policy)
		if err != nil {
			t.Fatal(err)
		}
		if tt.demote != "" {
			p.Demoted = map[string]map[string]string{"tags": {tt.demote: "test"}}
		}
		for _, fp := range p.Decide(m, &autotriagev1.Ticket{Id: 1}, both) {
			if fp.Field == "tags" && (fp.Decision != tt.decision || !strings.Contains(fp.Reason, tt.reason) || len(fp.Labels) != 2) {
				t.Errorf("%s (demoted %q): %v %q %v, want %v containing %q", tt.policy, tt.demote, fp.Decision, fp.Reason, fp.Labels, tt.decision, tt.reason)
			}
		}
	}
	if c := m.HeldOut("tags").Class("printer"); c == nil || c.Support != 200 {
		t.Fatalf("per-tag held-out curve: %+v", c)
	}
}
