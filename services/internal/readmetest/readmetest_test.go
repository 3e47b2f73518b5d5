package readmetest

import (
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Each kind of drift is found, and each documented form is read as meant.
func TestProblems(t *testing.T) {
	vars := []platform.Var{
		{Name: "AUTOTRIAGE_A", Default: "1"},
		{Name: "AUTOTRIAGE_B", Default: "x|y"},
		{Name: "AUTOTRIAGE_KEY", Secret: true},
		{Name: "NATS_URL", Default: "nats://127.0.0.1:4222"},
	}
	doc := Parse(strings.Join([]string{
		"| variable | default | meaning |",
		"|---|---|---|",
		"| `AUTOTRIAGE_A` | `2` | wrong default |",
		"| `AUTOTRIAGE_B` / `AUTOTRIAGE_GONE` | `x|y` | a pipe in code |",
		"| `AUTOTRIAGE_KEY` / `_FILE` | required | no default stated |",
		"Set `AUTOTRIAGE_KEY_FILE`, or any of `NATS_*` and `FRESHDESK_*`;",
		"`NATS_URL` (default `nats://elsewhere`).",
	}, "\n"))
	got := Problems(doc, Spec{Vars: vars, Listed: vars[:3], Shared: vars[3:]})
	want := []string{
		`3: AUTOTRIAGE_A: the README says default "2", the code "1"`,
		"4: AUTOTRIAGE_GONE is not a variable of what this README documents",
		"6: FRESHDESK_* matches no variable",
		`7: NATS_URL: the README says default "nats://elsewhere", the code "nats://127.0.0.1:4222"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A variable without a row, and shared ones neither named nor linked.
	doc = Parse("| `AUTOTRIAGE_A` | `1` | |\n")
	got = Problems(doc, Spec{Vars: vars, Listed: vars[:2], Shared: vars[3:]})
	want = []string{"0: AUTOTRIAGE_B has no row in the variable table", "0: NATS_URL is not mentioned"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = Problems(doc, Spec{Vars: vars, Shared: vars[3:], Reference: "ref.md#shared"})
	if want := "0: no link to ref.md#shared, where the shared variables are listed"; strings.Join(got, "\n") != want {
		t.Errorf("problems: %q, want %q", got, want)
	}
}

func TestAnchors(t *testing.T) {
	a := Anchors("# Title\n### Shared by every stage (process, NATS, streams)\n#not a heading\n")
	for _, want := range []string{"title", "shared-by-every-stage-process-nats-streams"} {
		if !a[want] {
			t.Errorf("no anchor %q in %v", want, a)
		}
	}
	if len(a) != 2 {
		t.Errorf("anchors %v, want 2", a)
	}
}
