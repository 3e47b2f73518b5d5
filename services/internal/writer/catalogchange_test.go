package writer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// catalogChanges returns the CATALOG_CHANGE outcomes stored in OUTCOMES.
func (h *harness) catalogChanges() []*v1.CatalogChange {
	h.t.Helper()
	var out []*v1.CatalogChange
	for _, o := range h.outcomes()[0] {
		if o.Kind != v1.OutcomeKind_OUTCOME_KIND_CATALOG_CHANGE || o.CatalogChange == nil {
			h.t.Errorf("outcome for no ticket of kind %v", o.Kind)
			continue
		}
		if o.System != testSystem || o.Account != testAccount {
			h.t.Errorf("catalog change for %s/%s", o.System, o.Account)
		}
		out = append(out, o.CatalogChange)
	}
	return out
}

// runRecorded starts the consume loop and waits until the writer recorded
// the catalog it started with (the baseline later changes are found against).
func (h *harness) runRecorded() {
	h.t.Helper()
	h.run()
	waitFor(h.t, "the writer to record the catalog", func() bool {
		_, err := h.kv.Get(context.Background(), catalogKey(testSystem, testAccount))
		return err == nil
	})
}

func countChanges(cs []*v1.CatalogChange, field, label, change string) int {
	n := 0
	for _, c := range cs {
		if c.Field == field && c.Label == label && c.Change == change {
			n++
		}
	}
	return n
}

func TestLabelMapEntryPointingNowhereFailsStart(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) {
		c.LabelMap = "group:Billing Dept=Billing,group:Old Team=Nowhere Team,type:Bug=Incident,type:Ask=Enquiry,tags:x=y"
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.stage.Run(ctx, h.conn)
	var ce *platform.ConfigError
	if !errors.As(err, &ce) || ce.Var != "AUTOTRIAGE_LABEL_MAP" {
		t.Fatalf("Run = %v, want a config error naming AUTOTRIAGE_LABEL_MAP", err)
	}
	for _, want := range []string{`group:Old Team=Nowhere Team (the helpdesk has no group "Nowhere Team"`, `type:Ask=Enquiry`, "Billing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Billing Dept=") || strings.Contains(err.Error(), "Bug=") {
		t.Errorf("error %q names entries that resolve", err)
	}
	if n := h.count("PREDICTIONS"); n != 0 {
		t.Fatalf("predictions %d", n)
	}

	// Every entry resolving: the check passes.
	ok := newHarness(t, options{writer: func(c *Config) { c.LabelMap = "group:Billing Dept=billing,priority:P1=Urgent,priority:P2=3" }})
	if err := ok.stage.CheckCatalog(ctx); err != nil {
		t.Fatalf("CheckCatalog = %v", err)
	}
}

func TestGroupDeletedMidRunIsNeverWrittenAndReportedOnce(t *testing.T) {
	// A long TTL: the cached catalog still has the group when the next
	// prediction names it; the rejected write makes the writer look again.
	h := newHarness(t, options{writer: func(c *Config) { c.CatalogTTL = time.Hour }})
	h.run()
	first := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(first, apply(FieldGroup, "Billing")), "p1")
	wantAction(t, only(t, h.settle(1), first), FieldGroup, v1.Action_ACTION_APPLIED, ReasonApplied)

	if err := h.sim.DeleteGroup("Billing"); err != nil {
		t.Fatal(err)
	}
	second := h.ticket(freshdesksim.NewTicket{})
	third := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(second, apply(FieldGroup, "Billing"), apply(FieldType, "Incident")), "p2")
	outs := h.settle(3)
	removed := `label "Billing" not in catalog: removed from the helpdesk (never written; retraining requested)`
	wantAction(t, only(t, outs, second), FieldGroup, v1.Action_ACTION_SKIPPED, removed)
	wantAction(t, only(t, outs, second), FieldType, v1.Action_ACTION_APPLIED, ReasonApplied)
	h.publish(h.prediction(third, apply(FieldGroup, "Billing")), "p3")
	outs = h.settle(4)
	wantAction(t, only(t, outs, third), FieldGroup, v1.Action_ACTION_SKIPPED, removed)

	for _, id := range []int64{second, third} {
		if st := h.simTicket(id); st.GroupID != 0 {
			t.Errorf("ticket %d: group %d written", id, st.GroupID)
		}
	}
	if st := h.simTicket(second); st.Type != "Incident" {
		t.Errorf("the other field was not written: type %q", st.Type)
	}
	cs := h.catalogChanges()
	if len(cs) != 1 || countChanges(cs, FieldGroup, "Billing", CatalogRemoved) != 1 {
		t.Errorf("catalog changes %v, want exactly one removed group Billing", cs)
	}
	if v := testutil.ToFloat64(h.stage.metrics.catalogChanges.WithLabelValues(FieldGroup, CatalogRemoved)); v != 1 {
		t.Errorf("autotriage_writer_catalog_changes_total{group,removed} = %v", v)
	}
}

func TestTypeRemovedIsNoticedOnAnUnknownLabel(t *testing.T) {
	// The cache expires quickly: the removal is noticed by a fresh read,
	// before any write is tried.
	h := newHarness(t, options{writer: func(c *Config) { c.CatalogTTL = 50 * time.Millisecond }})
	h.runRecorded()
	if err := h.sim.RemoveType("Refund"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed type to be reported", func() bool {
		return countChanges(h.catalogChanges(), FieldType, "Refund", CatalogRemoved) == 1
	})
	id := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(id, apply(FieldType, "Refund")), "p1")
	wantAction(t, only(t, h.settle(2), id), FieldType, v1.Action_ACTION_SKIPPED,
		`label "Refund" not in catalog: removed from the helpdesk (never written; retraining requested)`)
	if st := h.simTicket(id); st.Type != "" {
		t.Errorf("type %q written", st.Type)
	}
	if cs := h.catalogChanges(); len(cs) != 1 {
		t.Errorf("catalog changes %v, want one", cs)
	}
}

func TestGroupAddedIsReportedWithoutTraffic(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.CatalogTTL = 50 * time.Millisecond }})
	h.runRecorded()
	if _, err := h.sim.AddGroup("Legal"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added group to be reported", func() bool {
		return countChanges(h.catalogChanges(), FieldGroup, "Legal", CatalogAdded) == 1
	})
	if err := h.sim.AddType("Complaint"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added type to be reported", func() bool {
		return countChanges(h.catalogChanges(), FieldType, "Complaint", CatalogAdded) == 1
	})
	// A second replica reading the same catalog reports nothing again.
	other, err := New(h.stage.cfg, Deps{Tickets: h.stage.tickets, KV: h.kv, Publisher: h.conn, System: testSystem, Account: testAccount})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := other.CheckCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	if cs := h.catalogChanges(); len(cs) != 2 {
		t.Errorf("catalog changes %v, want the two additions once each", cs)
	}
}

func TestUnreachableHelpdeskAtStartIsRetried(t *testing.T) {
	h := newHarness(t, options{})
	// More failures than the client's own retries: the start check waits.
	h.sim.SetFault("ticket_fields", freshdesksim.Fault{ErrorRate: 1, Status: 503})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.stage.CheckCatalog(ctx) }()
	waitFor(t, "the start check to try more than once", func() bool {
		return calls(h.sim, "ticket_fields", 503) >= 8
	})
	select {
	case err := <-done:
		t.Fatalf("CheckCatalog returned %v while the helpdesk fails", err)
	default:
	}
	h.sim.SetFault("ticket_fields", freshdesksim.Fault{})
	if err := <-done; err != nil {
		t.Fatalf("CheckCatalog = %v once the helpdesk answers", err)
	}

	bad := newHarness(t, options{client: func(c *freshdesk.Config) { c.APIKey = "wrong-key" }})
	err := bad.stage.CheckCatalog(ctx)
	var ce *platform.ConfigError
	if !errors.As(err, &ce) || ce.Var != "FRESHDESK_API_KEY" || strings.Contains(err.Error(), "wrong-key") {
		t.Fatalf("CheckCatalog with a refused key = %v, want a config error naming FRESHDESK_API_KEY without the key", err)
	}
}
