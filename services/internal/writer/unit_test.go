package writer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

func TestParseLabelMap(t *testing.T) {
	m, err := ParseLabelMap(" group:Billing Dept = Billing , type:Bug=Incident,priority:P1=Urgent,")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ field, label, want string }{
		{FieldGroup, "Billing Dept", "Billing"},
		{FieldType, "Bug", "Incident"},
		{FieldPriority, "P1", "Urgent"},
		{FieldGroup, "Sales", "Sales"},              // not renamed
		{FieldType, "Billing Dept", "Billing Dept"}, // renames are per field
	} {
		if got := m.Name(c.field, c.label); got != c.want {
			t.Errorf("Name(%s, %s) = %q, want %q", c.field, c.label, got, c.want)
		}
	}
	for _, bad := range []string{"Billing=Sales", "colour:Red=Blue", "group:=Sales", "group:Sales", "group:A=B=C", "group:A=B,group:A=C"} {
		if _, err := ParseLabelMap(bad); err == nil {
			t.Errorf("ParseLabelMap(%q) accepted", bad)
		}
	}
}

func TestConfigValidateNamesTheVariable(t *testing.T) {
	for _, c := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.Concurrency = 0 }, "AUTOTRIAGE_WRITER_CONCURRENCY"},
		{func(c *Config) { c.Tag = "a,b" }, "AUTOTRIAGE_TAG"},
		{func(c *Config) { c.Tag = " " }, "AUTOTRIAGE_TAG"},
		{func(c *Config) { c.LabelMap = "nonsense" }, "AUTOTRIAGE_LABEL_MAP"},
		{func(c *Config) { c.NoteLease = 0 }, "AUTOTRIAGE_WRITER_NOTE_LEASE"},
		{func(c *Config) { c.CatalogTTL = 0 }, "AUTOTRIAGE_WRITER_CATALOG_TTL"},
	} {
		cfg := testConfig()
		c.mut(&cfg)
		var ce *platform.ConfigError
		if err := cfg.Validate(); !errors.As(err, &ce) || ce.Var != c.want {
			t.Errorf("Validate = %v, want a config error naming %s", err, c.want)
		}
	}
	if err := testConfig().Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

func TestResolveUsesTheCatalog(t *testing.T) {
	cat := &ticketsystem.Catalog{
		Groups:     []ticketsystem.Choice{{ID: 10000000001, Name: "Billing"}, {ID: 10000000002, Name: "Technical Support"}},
		Types:      []string{"Question", "Incident"},
		Priorities: []ticketsystem.Choice{{ID: 1, Name: "Low"}, {ID: 2, Name: "Medium"}, {ID: 3, Name: "High"}, {ID: 4, Name: "Urgent"}},
	}
	for _, c := range []struct {
		field, name string
		ok          bool
		want        target
	}{
		{FieldGroup, "Billing", true, target{name: "Billing", groupID: 10000000001}},
		{FieldGroup, "technical support", true, target{name: "Technical Support", groupID: 10000000002}},
		{FieldGroup, "Shipping", false, target{}},
		{FieldType, "incident", true, target{name: "Incident", typ: "Incident"}},
		{FieldType, "Refund", false, target{}},
		{FieldPriority, "Urgent", true, target{name: "Urgent", priority: 4}},
		{FieldPriority, "2", true, target{name: "Medium", priority: 2}},
		{FieldPriority, "9", false, target{}},
		{FieldPriority, "", false, target{}},
	} {
		got, ok := resolve(cat, c.field, c.name)
		if ok != c.ok || got != c.want {
			t.Errorf("resolve(%s, %q) = %+v %v, want %+v %v", c.field, c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestDecisionHashNamesTheDecisionNotTheVersion(t *testing.T) {
	base := func() *v1.Prediction {
		return &v1.Prediction{System: "freshdesk", Account: "acme", TicketId: 7, ModelId: "m1",
			TicketUpdatedAt: timestamppb.New(time.Unix(1000, 0)),
			Fields: []*v1.FieldPrediction{
				{Field: "group", Label: "Billing", Decision: v1.Decision_DECISION_APPLY, Confidence: 0.9},
				{Field: "type", Label: "Question", Decision: v1.Decision_DECISION_SUGGEST, Confidence: 0.6},
				{Field: "priority", Label: "High", Decision: v1.Decision_DECISION_SHADOW},
			}}
	}
	h := DecisionHash(base())
	same := base()
	same.TicketUpdatedAt = timestamppb.New(time.Unix(2000, 0)) // a later version (e.g. after the note)
	same.ModelId = "m2"
	same.Fields[0].Confidence = 0.99
	same.Fields[2].Label = "Low"                                    // shadow fields are not in the note
	same.Fields[0], same.Fields[1] = same.Fields[1], same.Fields[0] // order does not matter
	if got := DecisionHash(same); got != h {
		t.Errorf("hash changed with version/model/confidence/shadow/order: %s vs %s", got, h)
	}
	other := base()
	other.Fields[0].Label = "Sales"
	if DecisionHash(other) == h {
		t.Error("a different label gives the same hash")
	}
	other = base()
	other.Fields[1].Decision = v1.Decision_DECISION_APPLY
	if DecisionHash(other) == h {
		t.Error("a different decision gives the same hash")
	}
	other = base()
	other.TicketId = 8
	if DecisionHash(other) == h {
		t.Error("another ticket gives the same hash")
	}
	if len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("hash %q is not 16 hex digits", h)
	}
}

func TestNoteEscapesModelText(t *testing.T) {
	pred := &v1.Prediction{TicketId: 1, ModelVersion: "<b>v1</b>", Fields: []*v1.FieldPrediction{
		{Field: "tags", Labels: []string{"<script>"}, Decision: v1.Decision_DECISION_SUGGEST,
			TopK: []*v1.LabelScore{{Label: "<script>", Probability: 0.6}, {Label: "a&b", Probability: 0.3}}},
	}}
	plans := initialPlans(pred)
	resolvePlans(plans, &ticketsystem.Catalog{}, nil)
	decide(plans, pred, &ticketsystem.Ticket{ID: 1, Tags: []string{}}, nil, nil, nil, true)
	body := renderNote(pred, plans, "0123456789abcdef", "")
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>v1") || !strings.Contains(body, "a&amp;b 30%") {
		t.Errorf("note not escaped: %s", body)
	}
	if !strings.Contains(body, Marker("0123456789abcdef")) {
		t.Error("note lacks its marker")
	}
}

func TestRetryableMapsTicketSystemErrors(t *testing.T) {
	rl := &ticketsystem.Error{Kind: ticketsystem.ErrRateLimited, RetryAfter: 42 * time.Second}
	if d, ok := pipeline.RetryDelay(retryable(rl)); !ok || d != 42*time.Second {
		t.Errorf("429: delay %v %v", d, ok)
	}
	rl0 := &ticketsystem.Error{Kind: ticketsystem.ErrRateLimited}
	if d, ok := pipeline.RetryDelay(retryable(rl0)); !ok || d < time.Second {
		t.Errorf("429 without Retry-After: delay %v %v", d, ok)
	}
	auth := &ticketsystem.Error{Kind: ticketsystem.ErrAuth}
	if d, ok := pipeline.RetryDelay(retryable(auth)); !ok || d != time.Minute {
		t.Errorf("401: delay %v %v", d, ok)
	}
	tr := &ticketsystem.Error{Kind: ticketsystem.ErrTransient}
	if _, ok := pipeline.RetryDelay(retryable(tr)); ok || !errors.Is(retryable(tr), ticketsystem.ErrTransient) {
		t.Error("5xx should use the consumer's back-off")
	}
}
