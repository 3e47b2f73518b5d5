package writer

import (
	"context"
	"slices"
	"testing"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/quality"
)

// feedbackOf returns the verdicts in OUTCOMES (FEEDBACK outcomes and the
// feedback of OVERRIDE outcomes) by ticket.
func (h *harness) feedback() map[int64][]*v1.Outcome {
	h.t.Helper()
	out := map[int64][]*v1.Outcome{}
	for id, os := range h.outcomes() {
		for _, o := range os {
			if o.Feedback != nil {
				out[id] = append(out[id], o)
			}
		}
	}
	return out
}

type wantVerdict struct {
	field, label, final string
	verdict             v1.Verdict
	decision            v1.Decision
}

func checkVerdicts(t *testing.T, got []*v1.Outcome, want ...wantVerdict) {
	t.Helper()
	if len(got) != len(want) {
		for _, o := range got {
			t.Logf("  %v %+v", o.Kind, o.Feedback)
		}
		t.Fatalf("%d verdicts, want %d", len(got), len(want))
	}
next:
	for _, w := range want {
		for _, o := range got {
			fb := o.Feedback
			if fb.Field == w.field && fb.Label == w.label && fb.Verdict == w.verdict {
				if fb.FinalValue != w.final || fb.Decision != w.decision || fb.ModelId != testModel ||
					fb.ModelVersion != "2025-03-01 test" || fb.ObservedAt == nil {
					t.Errorf("verdict %+v, want final %q decision %v model %s", fb, w.final, w.decision, testModel)
				}
				wantKind := v1.OutcomeKind_OUTCOME_KIND_FEEDBACK
				if w.verdict == v1.Verdict_VERDICT_OVERRIDDEN && w.field != FieldTags {
					wantKind = v1.OutcomeKind_OUTCOME_KIND_OVERRIDE
				}
				if o.Kind != wantKind {
					t.Errorf("verdict %+v on a %v outcome, want %v", fb, o.Kind, wantKind)
				}
				continue next
			}
		}
		t.Errorf("no verdict %+v", w)
	}
}

// TestAgentsVerdictsOnAppliedAndSuggestedValues plays the whole loop: the
// writer applies or suggests through the simulator (over HTTP), records
// what it did in the ledger, a person then acts in the simulator, and the
// real fetcher observing the new versions (polls and webhooks, each version
// more than once) publishes each verdict to OUTCOMES exactly once.
func TestAgentsVerdictsOnAppliedAndSuggestedValues(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.LabelMap = "group:Billing Dept=Billing" }})
	h.run()
	obs := h.observer()
	ctx := context.Background()
	billing, shipping := h.groupID("Billing"), h.groupID("Shipping")

	applied := h.ticket(freshdesksim.NewTicket{})
	suggested := h.ticket(freshdesksim.NewTicket{})
	tagged := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(applied, apply(FieldGroup, "Billing Dept"), apply(FieldType, "Incident"),
		apply(FieldPriority, "High"), tags(v1.Decision_DECISION_APPLY, "invoice")), "a")
	h.publish(h.prediction(suggested, suggest(FieldGroup, "Billing Dept"), suggest(FieldType, "Refund"),
		suggest(FieldPriority, "Urgent")), "s")
	h.publish(h.prediction(tagged, tags(v1.Decision_DECISION_SUGGEST, "vip", "refund")), "t")
	h.settle(3)

	// The writer recorded the model's labels, the helpdesk's values and the model.
	rec, err := h.ledger.GetApplied(ctx, testSystem, testAccount, applied)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := ledger.FindDecided(rec.Decided, FieldGroup)
	if !ok || g.Label != "Billing Dept" || g.Value != "Billing" || g.Target.GroupID != billing || g.ModelID != testModel ||
		g.ModelVersion != "2025-03-01 test" || g.SourceUpdatedAt.IsZero() {
		t.Fatalf("applied group recorded as %+v (found %v)", g, ok)
	}
	if len(rec.Decided) != 4 || len(rec.Suggested) != 0 || rec.ModelID != testModel {
		t.Fatalf("applied record: decided %+v suggested %+v model %q", rec.Decided, rec.Suggested, rec.ModelID)
	}
	srec, err := h.ledger.GetApplied(ctx, testSystem, testAccount, suggested)
	if err != nil {
		t.Fatal(err)
	}
	sg, ok := ledger.FindDecided(srec.Suggested, FieldGroup)
	if !ok || sg.Label != "Billing Dept" || sg.Value != "Billing" || sg.From.GroupID != 0 || len(srec.Suggested) != 3 || len(srec.Decided) != 0 {
		t.Fatalf("suggestions recorded as %+v (decided %+v)", srec.Suggested, srec.Decided)
	}
	if p, _ := ledger.FindDecided(srec.Suggested, FieldPriority); p.From.Priority != 1 || p.Target.Priority != 4 || p.Value != "Urgent" {
		t.Fatalf("suggested priority recorded as %+v", p)
	}

	// The writer's own versions give no verdict.
	obs.poll()
	if fb := h.feedback(); len(fb) != 0 {
		t.Fatalf("verdicts before any person acted: %v", fb)
	}

	// A person moves the applied ticket to another group; sets the suggested
	// group, another type and leaves the priority; adds one suggested tag.
	must(t, h.sim.AgentUpdate(applied, map[string]any{"group_id": shipping}))
	must(t, h.sim.AgentUpdate(suggested, map[string]any{"group_id": billing, "type": "Question"}))
	st := h.simTicket(tagged)
	must(t, h.sim.AgentUpdate(tagged, map[string]any{"tags": append(slices.Clone(st.Tags), "vip")}))
	obs.poll()
	obs.webhook(applied)
	obs.webhook(suggested)
	obs.poll()
	fb := h.feedback()
	checkVerdicts(t, fb[applied], wantVerdict{FieldGroup, "Billing Dept", "Shipping", v1.Verdict_VERDICT_OVERRIDDEN, v1.Decision_DECISION_APPLY})
	checkVerdicts(t, fb[suggested],
		wantVerdict{FieldGroup, "Billing Dept", "Billing", v1.Verdict_VERDICT_ACCEPTED, v1.Decision_DECISION_SUGGEST},
		wantVerdict{FieldType, "Refund", "Question", v1.Verdict_VERDICT_REJECTED, v1.Decision_DECISION_SUGGEST})
	checkVerdicts(t, fb[tagged], wantVerdict{FieldTags, "vip", "vip", v1.Verdict_VERDICT_ACCEPTED, v1.Decision_DECISION_SUGGEST})

	// The first verdict on a decision is final: the accepted group moved on
	// is not rejected afterwards.
	must(t, h.sim.AgentUpdate(suggested, map[string]any{"group_id": shipping}))
	obs.poll()
	if n := len(h.feedback()[suggested]); n != 2 {
		t.Fatalf("%d verdicts on the suggestions after a later change, want still 2", n)
	}

	// Resolution: the applied values still in place are confirmed (not the
	// overridden group); the suggested tag not added is rejected; the
	// suggested priority nobody touched is no evidence.
	for _, id := range []int64{applied, suggested, tagged} {
		must(t, h.sim.AgentUpdate(id, map[string]any{"status": 4}))
	}
	obs.poll()
	for _, id := range []int64{applied, suggested, tagged} {
		obs.webhook(id)
	}
	obs.poll()
	// Closing the tickets, read again and again, repeats nothing.
	for _, id := range []int64{applied, suggested, tagged} {
		must(t, h.sim.AgentUpdate(id, map[string]any{"status": 5}))
	}
	obs.poll()
	obs.poll()
	obs.webhook(applied)
	fb = h.feedback()
	checkVerdicts(t, fb[applied],
		wantVerdict{FieldGroup, "Billing Dept", "Shipping", v1.Verdict_VERDICT_OVERRIDDEN, v1.Decision_DECISION_APPLY},
		wantVerdict{FieldType, "Incident", "Incident", v1.Verdict_VERDICT_CONFIRMED, v1.Decision_DECISION_APPLY},
		wantVerdict{FieldPriority, "High", "High", v1.Verdict_VERDICT_CONFIRMED, v1.Decision_DECISION_APPLY},
		wantVerdict{FieldTags, "invoice", "invoice", v1.Verdict_VERDICT_CONFIRMED, v1.Decision_DECISION_APPLY})
	checkVerdicts(t, fb[suggested],
		wantVerdict{FieldGroup, "Billing Dept", "Billing", v1.Verdict_VERDICT_ACCEPTED, v1.Decision_DECISION_SUGGEST},
		wantVerdict{FieldType, "Refund", "Question", v1.Verdict_VERDICT_REJECTED, v1.Decision_DECISION_SUGGEST})
	final := h.simTicket(tagged)
	checkVerdicts(t, fb[tagged],
		wantVerdict{FieldTags, "vip", "vip", v1.Verdict_VERDICT_ACCEPTED, v1.Decision_DECISION_SUGGEST},
		wantVerdict{FieldTags, "refund", joinTags(final.Tags), v1.Verdict_VERDICT_REJECTED, v1.Decision_DECISION_SUGGEST})

	// What live precision makes of it.
	tr := quality.NewTracker(quality.Options{})
	for _, os := range h.outcomes() {
		for _, o := range os {
			tr.Observe(o)
		}
	}
	for _, c := range []struct {
		field, label string
		n, correct   int
	}{
		{FieldGroup, "Billing Dept", 2, 1}, {FieldType, "Incident", 1, 1}, {FieldType, "Refund", 1, 0},
		{FieldTags, "vip", 1, 1}, {FieldTags, "refund", 1, 0}, {FieldPriority, "Urgent", 0, 0},
	} {
		if n, k := tr.ClassPrecision(c.field, c.label); n != c.n || k != c.correct {
			t.Errorf("%s/%s: %d of %d correct, want %d of %d", c.field, c.label, k, n, c.correct, c.n)
		}
	}
	if n, k := tr.ModelPrecision(testModel, FieldGroup); n != 2 || k != 1 {
		t.Errorf("model on group: %d of %d, want 1 of 2", k, n)
	}
}

// TestFeedbackSurvivesLostBookkeeping: with the fetcher's record of what it
// reported gone (a crash before it was stored), the verdicts are published
// again under the same message ids and the stream keeps one of each.
func TestFeedbackSurvivesLostBookkeeping(t *testing.T) {
	h := newHarness(t, options{})
	h.run()
	obs := h.observer()
	id := h.ticket(freshdesksim.NewTicket{})
	h.publish(h.prediction(id, apply(FieldType, "Incident")), "a")
	h.settle(1)
	obs.poll()
	must(t, h.sim.AgentUpdate(id, map[string]any{"status": 4}))
	obs.poll()
	if n := len(h.feedback()[id]); n != 1 {
		t.Fatalf("%d verdicts, want 1", n)
	}
	state, err := h.conn.KV(context.Background(), pipeline.BucketFetcher)
	if err != nil {
		t.Fatal(err)
	}
	if err := state.Delete(context.Background(), "feedback."+testSystem+"."+testAccount+"."+itoa(int(id))); err != nil {
		t.Fatal(err)
	}
	obs.webhook(id)
	fresh := h.observer() // another replica, nothing cached
	fresh.webhook(id)
	fresh.poll()
	checkVerdicts(t, h.feedback()[id], wantVerdict{FieldType, "Incident", "Incident", v1.Verdict_VERDICT_CONFIRMED, v1.Decision_DECISION_APPLY})
}

func joinTags(tags []string) string {
	out := ""
	for i, t := range tags {
		if i > 0 {
			out += ","
		}
		out += t
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
