package outcomes_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/outcomes"
)

func TestLatestKeepsTheLastAttemptPerPrediction(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	pred := func(id int64) *v1.Prediction {
		return &v1.Prediction{System: "freshdesk", Account: "acme", TicketId: id, TicketUpdatedAt: at, ModelId: "m"}
	}
	decision := func(p *v1.Prediction, attempt string, a v1.Action) *v1.Outcome {
		return &v1.Outcome{Kind: v1.OutcomeKind_OUTCOME_KIND_DECISION, TicketId: p.TicketId, Prediction: p,
			PredictionKey: v1.PredictionKey(p), Attempt: attempt, Fields: []*v1.FieldOutcome{{Field: "group", Action: a}}}
	}
	var l outcomes.Latest
	l.Add(decision(pred(1), "", v1.Action_ACTION_FAILED))
	l.Add(decision(pred(2), "", v1.Action_ACTION_APPLIED))
	if l.Add(&v1.Outcome{Kind: v1.OutcomeKind_OUTCOME_KIND_OVERRIDE, TicketId: 2}) {
		t.Error("an override was kept as a decision")
	}
	l.Add(decision(pred(1), "dlq-retry:r1", v1.Action_ACTION_APPLIED))
	got := l.Outcomes()
	if l.Len() != 2 || got[0].TicketId != 1 || got[1].TicketId != 2 {
		t.Fatalf("outcomes %v", got)
	}
	if got[0].Attempt != "dlq-retry:r1" || got[0].Fields[0].Action != v1.Action_ACTION_APPLIED {
		t.Errorf("ticket 1 kept %v, want the retry's APPLIED outcome", got[0])
	}
}
