package triage

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParsePolicy: AUTOTRIAGE_POLICY is operator input. Any string either
// fails with an error or gives a policy of known fields, valid modes and
// thresholds in range, which String renders back to the same policy.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"", "group=apply:p95,priority=suggest:0.8,type=shadow,tags=apply:0.9",
		"GROUP = Apply : P50 ", "group=apply:1e-300", `group[Billing]=suggest,group[ a\]b ]=apply:p90`, "tags[x,y]=apply:0.5,tags=shadow", "group[]=apply", "group[unterminated=apply", `type[\\]=shadow`, "group[x]=apply,group[x]=shadow", "tags=apply:p100", "group=apply,group=shadow", "x=apply", "group=apply:NaN", "type=suggest:0x1p-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		for field, fp := range p.Fields {
			if !isField(field) {
				t.Fatalf("%q: unknown field %q accepted", s, field)
			}
			if fp.Mode != Shadow && fp.Mode != Suggest && fp.Mode != Apply {
				t.Fatalf("%q: mode %v", s, fp.Mode)
			}
			if fp.Probability < 0 || fp.Probability > 1 || fp.TargetPrecision < 0 || fp.TargetPrecision > 1 ||
				(fp.Probability > 0 && fp.TargetPrecision > 0) || fp.Probability != fp.Probability || fp.TargetPrecision != fp.TargetPrecision {
				t.Fatalf("%q: thresholds out of range: %+v", s, fp)
			}
		}
		for field, classes := range p.Classes {
			if !isField(field) || len(classes) == 0 {
				t.Fatalf("%q: classes of %q: %v", s, field, classes)
			}
			for label, fp := range classes {
				if label == "" || label != strings.TrimSpace(label) {
					t.Fatalf("%q: class %q accepted", s, label)
				}
				if fp.Mode != Shadow && fp.Mode != Suggest && fp.Mode != Apply || fp.Probability < 0 || fp.Probability > 1 ||
					fp.TargetPrecision < 0 || fp.TargetPrecision > 1 || (fp.Probability > 0 && fp.TargetPrecision > 0) {
					t.Fatalf("%q: class %q: %+v", s, label, fp)
				}
			}
		}
		again, err := ParsePolicy(p.String())
		if err != nil {
			t.Fatalf("%q rendered as %q, which does not parse: %v", s, p.String(), err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("%q: round trip through %q gave %+v, want %+v", s, p.String(), again, p)
		}
	})
}
