package freshdesksim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

func loadFixture(t *testing.T, name string) any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(sharedDir(t), "fixtures", "freshdesk", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	}
	return "object"
}

var tsRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// compareShape checks that ours has the fixture's keys (exactly, when exact)
// with compatible value types: null on either side is compatible with
// anything, since the fixture's nulls are blanks. Objects and non-empty arrays
// are compared recursively except under opaque keys (custom_fields: their
// keys belong to the account). Every timestamp we send must be UTC whole
// seconds.
func compareShape(t *testing.T, path string, fx, ours any, exact bool, exempt map[string]bool) {
	t.Helper()
	fk, ok := kindOf(fx), kindOf(ours)
	if fk == "null" || ok == "null" {
		return
	}
	if fk != ok {
		t.Errorf("%s: fixture %s, ours %s", path, fk, ok)
		return
	}
	switch f := fx.(type) {
	case map[string]any:
		o := ours.(map[string]any)
		var fkeys, okeys []string
		for k := range f {
			fkeys = append(fkeys, k)
		}
		for k := range o {
			okeys = append(okeys, k)
		}
		sort.Strings(fkeys)
		sort.Strings(okeys)
		for _, k := range fkeys {
			if _, ok := o[k]; !ok {
				t.Errorf("%s: key %q missing", path, k)
			}
		}
		if exact {
			for _, k := range okeys {
				if _, ok := f[k]; !ok {
					t.Errorf("%s: extra key %q", path, k)
				}
			}
		}
		for _, k := range fkeys {
			if exempt[k] {
				continue
			}
			if k == "custom_fields" {
				if kindOf(o[k]) != "object" {
					t.Errorf("%s.custom_fields not an object", path)
				}
				continue
			}
			compareShape(t, path+"."+k, f[k], o[k], exact, exempt)
		}
		for k, v := range o {
			if s, ok := v.(string); ok && (strings.HasSuffix(k, "_at") || strings.HasSuffix(k, "due_by")) && !tsRe.MatchString(s) {
				t.Errorf("%s.%s = %q is not YYYY-MM-DDTHH:MM:SSZ", path, k, s)
			}
		}
	case []any:
		o := ours.([]any)
		if len(f) > 0 && len(o) > 0 {
			compareShape(t, path+"[0]", f[0], o[0], exact, exempt)
		}
	}
}

func TestShapesMatchFixtures(t *testing.T) {
	sharedDir(t)
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{History: 5, New: 5}); err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/api/v2/tickets/1/notes", adminKey, `{"body":"x"}`)
	getJSON := func(path string) any { return e.get(path).json(t) }
	noteResp := e.do("POST", "/api/v2/tickets/2/notes", adminKey, `{"body":"This is a private note"}`).json(t)

	groups := getJSON("/api/v2/groups").([]any)
	gid := int64(groups[0].(map[string]any)["id"].(float64))
	agents := getJSON("/api/v2/agents").([]any)
	aid := int64(agents[0].(map[string]any)["id"].(float64))

	// auto_ticket_assign is a bool in the docs samples and an integer mode in
	// the current API (reference section 7); the simulator sends the integer.
	groupExempt := map[string]bool{"auto_ticket_assign": true}
	withStats := getJSON("/api/v2/tickets/1?include=stats,requester").(map[string]any)
	fxStats := loadFixture(t, "view_ticket_with_stats_requester.json").(map[string]any)

	tests := []struct {
		name    string
		fixture any
		ours    any
		exact   bool
		exempt  map[string]bool
	}{
		// Recorded: exact key sets.
		{"list_tickets_page1", loadFixture(t, "list_tickets_page1.json"), getJSON("/api/v2/tickets?updated_since=2000-01-01"), true, nil},
		{"list_tickets_page2", loadFixture(t, "list_tickets_page2.json"), getJSON("/api/v2/tickets?updated_since=2000-01-01&page=1"), true, nil},
		{"view_ticket_custom_fields", loadFixture(t, "view_ticket_custom_fields.json"), getJSON("/api/v2/tickets/1"), true, nil},
		{"stats object", fxStats["stats"], withStats["stats"], true, nil},
		{"requester object", fxStats["requester"], withStats["requester"], true, nil},
		{"create_note_private", loadFixture(t, "create_note_private.json"), noteResp, false, nil},
		{"list_conversations", loadFixture(t, "list_conversations.json"), getJSON("/api/v2/tickets/1/conversations"), false, nil},
		// Docs-derived samples: their keys must be present.
		{"list_groups_docs_sample", loadFixture(t, "list_groups_docs_sample.json"), groups, false, groupExempt},
		{"view_group_docs_sample", loadFixture(t, "view_group_docs_sample.json"), getJSON("/api/v2/groups/" + itoa(gid)), false, groupExempt},
		{"list_agents_docs_sample", loadFixture(t, "list_agents_docs_sample.json"), agents, false, nil},
		{"view_agent_docs_sample", loadFixture(t, "view_agent_docs_sample.json"), getJSON("/api/v2/agents/" + itoa(aid)), false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			compareShape(t, tc.name, tc.fixture, tc.ours, tc.exact, tc.exempt)
		})
	}
	// The list form must not carry the view-only keys, and vice versa.
	list := getJSON("/api/v2/tickets?updated_since=2000-01-01").([]any)[0].(map[string]any)
	view := getJSON("/api/v2/tickets/1").(map[string]any)
	for _, k := range []string{"description", "attachments", "internal_agent_id"} {
		if _, ok := list[k]; ok {
			t.Errorf("list has %s", k)
		}
	}
	if _, ok := view["associated_tickets_count"]; ok {
		t.Error("view has associated_tickets_count (absent from the recorded view)")
	}
	// Search results are ticket objects too.
	res := getJSON(`/api/v2/search/tickets?query=%22status:2%22`).(map[string]any)["results"].([]any)
	compareShape(t, "search", loadFixture(t, "list_tickets_page1.json").([]any)[0], res[0], true, nil)
	// ids at or above 10^10 for requesters, groups, agents.
	for _, k := range []string{"requester_id", "group_id", "responder_id"} {
		if v, ok := view[k].(float64); ok && v < 1e10 {
			t.Errorf("%s = %v < 1e10", k, v)
		}
	}
	if !slices.Contains([]string{"Question", "Incident", "Problem", "Feature Request", "Refund"}, view["type"].(string)) {
		t.Errorf("history ticket type %v", view["type"])
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
