package allinone_test

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// dotEnv reads KEY=VALUE lines the way Compose reads .env: comments and
// blank lines skipped, a later line overriding an earlier one.
func dotEnv(text string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return out
}

// withoutDemo comments out every line of the demo block of .env.example
// (from its "# --- Demo" header to the next "# ---" header), which is what
// README.md and .env.example tell a user switching to a real account to do.
func withoutDemo(t *testing.T, text string) string {
	t.Helper()
	var b strings.Builder
	in, seen, commented := false, false, 0
	for _, l := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(l, "# ---") {
			in = strings.HasPrefix(l, "# --- Demo")
			seen = seen || in
		}
		if in && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
			l = "#" + l
			commented++
		}
		b.WriteString(l)
	}
	if !seen || commented == 0 {
		t.Fatalf(".env.example has no demo block (a \"# --- Demo\" header with settings under it)")
	}
	return b.String()
}

// policyAndStart is what the classifier and the fetcher of docker-compose.yml
// get from an .env: Compose passes AUTOTRIAGE_POLICY and
// AUTOTRIAGE_FETCHER_START through (empty when unset) and the stages apply
// their defaults.
func policyAndStart(t *testing.T, env map[string]string) (triage.Policy, string) {
	t.Helper()
	var tc triage.Config
	if err := platform.LoadConfigFrom(&tc, nil, "classifier", "", io.Discard, map[string]string{"AUTOTRIAGE_POLICY": env["AUTOTRIAGE_POLICY"]}); err != nil {
		t.Fatal(err)
	}
	p, err := triage.ParsePolicy(tc.Policy)
	if err != nil {
		t.Fatal(err)
	}
	fc := struct{ fetcher.Config }{}
	if err := platform.LoadConfigFrom(&fc, nil, "fetcher", "", io.Discard, map[string]string{
		"AUTOTRIAGE_FETCHER_START": env["AUTOTRIAGE_FETCHER_START"], "AUTOTRIAGE_WEBHOOK_DISABLED": "true"}); err != nil {
		t.Fatal(err)
	}
	return p, fc.Start
}

// Switching .env.example to a real account the documented way (commenting
// out the demo block) leaves a configuration that writes nothing to the
// helpdesk — every field shadowed — and triages only tickets created from
// the first start on. The demo block itself is what carries the demo's
// apply policy and its reach back.
func TestEnvExampleOutsideTheDemoIsShadow(t *testing.T) {
	b, err := os.ReadFile("../../../.env.example")
	if err != nil {
		t.Skipf(".env.example not found: %v", err)
	}
	demoPolicy, demoStart := policyAndStart(t, dotEnv(string(b)))
	applies := false
	for _, fp := range demoPolicy.Fields {
		applies = applies || fp.Mode == triage.Apply
	}
	if !applies || demoStart == "now" {
		t.Errorf("as shipped (the demo) the policy is %s and the start %q: the demo should show fields applied to the simulator's waiting tickets", demoPolicy, demoStart)
	}

	real := dotEnv(withoutDemo(t, string(b)))
	p, start := policyAndStart(t, real)
	for _, f := range []string{"group", "priority", "type", "tags"} {
		if fp := p.Fields[f]; fp.Mode != triage.Shadow {
			t.Errorf("with the demo block commented out, %s is %s (policy %s): outside the demo block .env.example must be shadow everywhere", f, fp.Mode, p)
		}
	}
	if start != "now" {
		t.Errorf("with the demo block commented out, AUTOTRIAGE_FETCHER_START is %q: a real account's first start must triage only new tickets", start)
	}
	for _, k := range []string{"COMPOSE_PROFILES", "FRESHDESK_BASE_URL"} {
		if v, ok := real[k]; ok {
			t.Errorf("with the demo block commented out, %s=%s is still set", k, v)
		}
	}

	// docker-compose.yml adds no policy of its own on the way.
	c, err := os.ReadFile("../../../docker-compose.yml")
	if err != nil {
		t.Skipf("docker-compose.yml not found: %v", err)
	}
	if !strings.Contains(string(c), "AUTOTRIAGE_POLICY: ${AUTOTRIAGE_POLICY:-}") {
		t.Errorf("docker-compose.yml no longer passes AUTOTRIAGE_POLICY through with an empty default")
	}
}
