//go:build e2e

package e2e

import "testing"

// TestMessageIDParsing pins how the checks read the stages' message ids
// (classifier.PredictionID, writer.OutcomeID): a misread id would make
// two outcomes of one prediction look like outcomes of two.
func TestMessageIDParsing(t *testing.T) {
	const model = "37c846754f71ad23888fd1de4a8f3224f89673bcccdbaa287b6e635092f4b151"
	for _, c := range []struct {
		outcome, key, version string
		ticket                int64
	}{
		{"outcome:freshdesk:acme:816:2026-12-03T19:05:46Z:" + model,
			"freshdesk:acme:816:2026-12-03T19:05:46Z:" + model, "freshdesk:acme:816:2026-12-03T19:05:46Z", 816},
		{"outcome:freshdesk:acme:7:2026-12-03T19:05:46.5Z:" + model + ":backfill-1:dlq-retry:run-2",
			"freshdesk:acme:7:2026-12-03T19:05:46.5Z:" + model + ":backfill-1", "freshdesk:acme:7:2026-12-03T19:05:46.5Z", 7},
		{"outcome:freshdesk:acme:7:2026-12-03T19:05:46Z:" + model + ":replay:r1",
			"freshdesk:acme:7:2026-12-03T19:05:46Z:" + model, "freshdesk:acme:7:2026-12-03T19:05:46Z", 7},
	} {
		key, ok := predictionKey(c.outcome)
		if !ok || key != c.key {
			t.Errorf("predictionKey(%q) = %q, %v; want %q", c.outcome, key, ok, c.key)
		}
		v, id, ok := parseVersion(key)
		if !ok || v != c.version || id != c.ticket {
			t.Errorf("parseVersion(%q) = %q, %d, %v; want %q, %d", key, v, id, ok, c.version, c.ticket)
		}
	}
	if v, id, ok := parseVersion("freshdesk:acme:816:2026-12-03T19:05:46Z:37c846754f71ad23"); !ok || id != 816 || v != "freshdesk:acme:816:2026-12-03T19:05:46Z" {
		t.Errorf("prediction id: got %q, %d, %v", v, id, ok)
	}
	if _, ok := predictionKey("override:freshdesk:acme:816:group:2026-12-03T19:05:46Z"); ok {
		t.Error("an override id read as a writer outcome")
	}
	if _, _, ok := parseVersion("freshdesk:acme:x:2026"); ok {
		t.Error("a malformed id parsed")
	}
}
