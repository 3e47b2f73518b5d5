package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestStatusCatalogSection(t *testing.T) {
	_, url := pipelineEnv(t)
	sim := simEnv(t, 150)
	mustRun(t, "train", "--from-helpdesk", "--since", "40d", "--promote", "--folds", "2", "--nats", url)

	var st statusOutput
	if err := json.Unmarshal([]byte(mustRun(t, "status", "--json", "--nats", url)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Catalog == nil || st.Catalog.Error != "" || len(st.Catalog.Missing) != 0 {
		t.Fatalf("catalog before any change: %+v", st.Catalog)
	}

	if _, err := sim.AddGroup("Legal"); err != nil {
		t.Fatal(err)
	}
	if err := sim.DeleteGroup("Billing"); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddType("Complaint"); err != nil {
		t.Fatal(err)
	}
	st = statusOutput{}
	if err := json.Unmarshal([]byte(mustRun(t, "status", "--json", "--nats", url)), &st); err != nil {
		t.Fatal(err)
	}
	c := st.Catalog
	if c == nil || c.Error != "" || c.ModelID == "" {
		t.Fatalf("catalog: %+v", c)
	}
	if !slices.Contains(c.Untrained["group"], "Legal") || !slices.Contains(c.Untrained["type"], "Complaint") {
		t.Errorf("untrained %v, want group Legal and type Complaint", c.Untrained)
	}
	if !slices.Equal(c.Missing["group"], []string{"Billing"}) || len(c.Missing) != 1 {
		t.Errorf("missing %v, want group Billing only", c.Missing)
	}
	text := mustRun(t, "status", "--nats", url)
	for _, want := range []string{"catalog (against model", "group in the helpdesk without training examples", "Legal",
		"group the model predicts that the helpdesk no longer has (never written; retrain): Billing"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}

	// The label map counts: a model label renamed to a value the helpdesk
	// has is not missing.
	t.Setenv("AUTOTRIAGE_LABEL_MAP", "group:Billing=Legal")
	st = statusOutput{}
	if err := json.Unmarshal([]byte(mustRun(t, "status", "--json", "--nats", url)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Catalog.Missing) != 0 || slices.Contains(st.Catalog.Untrained["group"], "Legal") {
		t.Errorf("with the label map: %+v", st.Catalog)
	}
}
