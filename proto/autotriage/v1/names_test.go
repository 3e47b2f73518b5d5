package autotriagev1

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestShortNamesCoverEveryValue(t *testing.T) {
	seen := map[string]bool{}
	for v := range Decision_name {
		n := Decision(v).Short()
		if seen[n] {
			t.Errorf("decision %d shares the short name %q", v, n)
		}
		seen[n] = true
	}
	seen = map[string]bool{}
	for v := range Action_name {
		n := Action(v).Short()
		if seen[n] {
			t.Errorf("action %d shares the short name %q", v, n)
		}
		seen[n] = true
	}
}

func TestPredictionKeyIsSharedByAttemptsAndSeparatesPredictions(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	p := &Prediction{System: "freshdesk", Account: "acme", TicketId: 7, TicketUpdatedAt: at, ModelId: "m1", Ticket: &Ticket{Id: 7}}
	k := PredictionKey(p)
	if k != "freshdesk:acme:7:2026-03-01T10:00:00Z:m1" {
		t.Fatalf("key %q", k)
	}
	first := &Outcome{PredictionKey: k}
	retried := &Outcome{PredictionKey: k, Attempt: "dlq-retry:abc"}
	legacy := &Outcome{System: "freshdesk", Account: "acme", TicketId: 7, TicketUpdatedAt: at, ModelId: "m1"}
	withPred := &Outcome{Prediction: p}
	for _, o := range []*Outcome{first, retried, legacy, withPred} {
		if o.Key() != k {
			t.Errorf("outcome %v: key %q, want %q", o, o.Key(), k)
		}
	}
	others := []*Prediction{
		{System: "freshdesk", Account: "acme", TicketId: 7, TicketUpdatedAt: at, ModelId: "m2"},
		{System: "freshdesk", Account: "acme", TicketId: 8, TicketUpdatedAt: at, ModelId: "m1"},
		{System: "freshdesk", Account: "acme", TicketId: 7, TicketUpdatedAt: timestamppb.New(at.AsTime().Add(time.Second)), ModelId: "m1"},
		{System: "freshdesk", Account: "acme", TicketId: 7, TicketUpdatedAt: at, ModelId: "m1", Ticket: &Ticket{BatchId: "b1"}},
	}
	for _, o := range others {
		if PredictionKey(o) == k {
			t.Errorf("prediction %v shares the key %q", o, k)
		}
	}
}
