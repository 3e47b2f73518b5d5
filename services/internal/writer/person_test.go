package writer

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// A person sets the group autotriage was about to set: the value is the
// person's. The ledger must not claim it (a later change by that person is
// their own business, not an override of autotriage), while the field
// autotriage did write is recorded as its own.
func TestPersonsEqualValueIsRecordedAsThePersons(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.Reread = true }})
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, apply(FieldGroup, "Billing"), apply(FieldType, "Incident"))
	if err := h.sim.AgentUpdate(id, map[string]any{"group_id": h.groupID("Billing")}); err != nil {
		t.Fatal(err)
	}
	if err := h.handle(pred, 1); err != nil {
		t.Fatal(err)
	}
	o := only(t, h.outcomes(), id)
	if g := fieldOutcome(t, o, FieldGroup); g.Reason == ReasonApplied {
		t.Errorf("group outcome %s %q, want it not reported as autotriage's write", g.Action.Short(), g.Reason)
	}
	wantAction(t, o, FieldType, v1.Action_ACTION_APPLIED, ReasonApplied)
	rec, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Fields.GroupID != 0 || rec.Fields.GroupName != "" {
		t.Errorf("ledger claims the person's group: %+v", rec.Fields)
	}
	if rec.Fields.Type != "Incident" {
		t.Errorf("ledger type %q, want autotriage's Incident", rec.Fields.Type)
	}
}

// A person removes tags after the predicted version: the PUT does not put
// them back, whether the prediction named them or not, and a prediction
// left with nothing to add is skipped as the person's change.
func TestTagsRemovedByAPersonStayRemoved(t *testing.T) {
	for _, reread := range []bool{true, false} {
		t.Run(map[bool]string{true: "reread", false: "observed by the fetcher"}[reread], func(t *testing.T) {
			h := newHarness(t, options{writer: func(c *Config) { c.Reread = reread }})
			o := h.observer()
			keep := h.ticket(freshdesksim.NewTicket{Tags: []string{"vip", "legacy"}})
			named := h.ticket(freshdesksim.NewTicket{Tags: []string{"vip", "legacy"}})
			predKeep := h.prediction(keep, tags(v1.Decision_DECISION_APPLY, "refund"))
			predNamed := h.prediction(named, tags(v1.Decision_DECISION_APPLY, "legacy"))
			for _, id := range []int64{keep, named} {
				if err := h.sim.AgentUpdate(id, map[string]any{"tags": []string{"vip"}}); err != nil {
					t.Fatal(err)
				}
				o.webhook(id) // the fetcher observes the person's change
			}
			for _, p := range []*v1.Prediction{predKeep, predNamed} {
				if err := h.handle(p, 1); err != nil {
					t.Fatal(err)
				}
			}
			outs := h.outcomes()
			if st := h.simTicket(keep); slices.Contains(st.Tags, "legacy") || !slices.Contains(st.Tags, "refund") {
				t.Errorf("ticket %d tags %v: want refund added and legacy still removed", keep, st.Tags)
			}
			wantAction(t, only(t, outs, keep), FieldTags, v1.Action_ACTION_APPLIED, ReasonApplied)
			if st := h.simTicket(named); slices.Contains(st.Tags, "legacy") {
				t.Errorf("ticket %d tags %v: the person removed legacy, the PUT put it back", named, st.Tags)
			}
			wantAction(t, only(t, outs, named), FieldTags, v1.Action_ACTION_SKIPPED, ReasonPersonChanged)
		})
	}
}

// A shutdown cancels a handler on the prediction's last delivery: the
// message goes to the DLQ, and its FAILED outcome is still stored (it was
// lost when published with the cancelled context).
func TestCancelledLastDeliveryStillStoresItsOutcome(t *testing.T) {
	h := newHarness(t, options{})
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, apply(FieldGroup, "Billing"))
	b, err := proto.Marshal(pred)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = h.stage.Handle(ctx, &pipeline.Msg{Subject: pipeline.PredictionSubject(pred.System, pred.Account, pred.TicketId),
		Data: b, Stream: pipeline.StreamPredictions, NumDelivered: 6, MaxDeliver: 6})
	if err == nil {
		t.Fatal("a cancelled delivery succeeded")
	}
	o := only(t, h.outcomes(), id)
	wantAction(t, o, FieldGroup, v1.Action_ACTION_FAILED, fieldOutcome(t, o, FieldGroup).Reason)
}

// The poll or a webhook catches the version autotriage's note produced
// before the write is recorded (the note bumps updated_at, the PUT comes
// after), and the classifier predicts it: that prediction is an echo of
// autotriage and is skipped as such, not reported as a second application.
func TestPredictionOfAutotriagesOwnIntermediateVersionIsSkipped(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.Reread = true }})
	id := h.ticket(freshdesksim.NewTicket{})
	pred := h.prediction(id, apply(FieldGroup, "Billing"), suggest(FieldPriority, "High"))
	if err := h.handle(pred, 1); err != nil {
		t.Fatal(err)
	}
	rec, err := h.ledger.GetApplied(context.Background(), testSystem, testAccount, id)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.ReadUpdatedAt.Equal(pred.TicketUpdatedAt.AsTime()) || !rec.WrittenUpdatedAt.After(rec.ReadUpdatedAt) {
		t.Fatalf("ledger read %v written %v, want the version read before the write and a later written one", rec.ReadUpdatedAt, rec.WrittenUpdatedAt)
	}
	between := h.prediction(id, apply(FieldGroup, "Sales"))
	between.TicketUpdatedAt = timestamppb.New(rec.WrittenUpdatedAt.Add(-time.Millisecond))
	between.Ticket.UpdatedAt = between.TicketUpdatedAt
	puts := calls(h.sim, "tickets.update", 0)
	if err := h.handle(between, 1); err != nil {
		t.Fatal(err)
	}
	var o *v1.Outcome
	for _, x := range h.outcomes()[id] {
		if x.Key() == v1.PredictionKey(between) {
			o = x
		}
	}
	if o == nil {
		t.Fatal("no outcome for the echo's prediction")
	}
	wantAction(t, o, FieldGroup, v1.Action_ACTION_SKIPPED, ReasonOwnVersion)
	if n := calls(h.sim, "tickets.update", 0); n != puts || len(h.sim.Notes(id)) != 1 {
		t.Errorf("the echo wrote: %d PUTs (was %d), %d notes", n, puts, len(h.sim.Notes(id)))
	}
	if st := h.simTicket(id); st.GroupID != h.groupID("Billing") {
		t.Errorf("group %d, want Billing still", st.GroupID)
	}
}
