package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/quality"
)

func feedbackMsg(t *testing.T, id int64, kind v1.OutcomeKind, field, label string, v v1.Verdict) []byte {
	t.Helper()
	now := timestamppb.Now()
	o := &v1.Outcome{System: "freshdesk", Account: "acme", TicketId: id, Kind: kind, At: now, ModelId: "abcdef0123456789",
		Feedback: &v1.Feedback{Field: field, Label: label, Verdict: v, ModelId: "abcdef0123456789", ModelVersion: "v1", ObservedAt: now}}
	if kind == v1.OutcomeKind_OUTCOME_KIND_OVERRIDE {
		o.Override = &v1.Override{Field: field, AutotriageValue: label, HumanValue: "Other"}
	}
	b, err := proto.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStatusLivePrecision: status reads the verdicts in OUTCOMES (FEEDBACK
// outcomes and overrides carrying feedback) and shows precision per field
// and class with the Wilson bounds; other outcomes and undecodable
// messages do not count.
func TestStatusLivePrecision(t *testing.T) {
	c, url := pipelineEnv(t)
	n := 0
	pub := func(id int64, kind v1.OutcomeKind, field, label string, v v1.Verdict) {
		n++
		publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", id), ID: fmt.Sprint("f", n),
			Data: feedbackMsg(t, id, kind, field, label, v)})
	}
	for i := range int64(9) {
		pub(i, v1.OutcomeKind_OUTCOME_KIND_FEEDBACK, "group", "Billing", v1.Verdict_VERDICT_CONFIRMED)
	}
	pub(10, v1.OutcomeKind_OUTCOME_KIND_OVERRIDE, "group", "Billing", v1.Verdict_VERDICT_OVERRIDDEN)
	pub(11, v1.OutcomeKind_OUTCOME_KIND_FEEDBACK, "type", "Refund", v1.Verdict_VERDICT_ACCEPTED)
	pub(12, v1.OutcomeKind_OUTCOME_KIND_FEEDBACK, "type", "Refund", v1.Verdict_VERDICT_REJECTED)
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", 1), ID: "decision",
		Data: outcomeMsg(t, 1, "", "Billing", 1, "Billing", 0.9)})
	publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", 1), ID: "junk", Data: []byte{0xff, 0xff}})

	var st statusOutput
	if err := json.Unmarshal([]byte(mustRun(t, "status", "--json", "--no-helpdesk", "--nats", url)), &st); err != nil {
		t.Fatal(err)
	}
	lp := st.Precision
	if lp == nil || lp.Error != "" || lp.Read != 14 || len(lp.Classes) != 2 || lp.Window != quality.DefaultWindow {
		t.Fatalf("live precision %+v", lp)
	}
	g := lp.Classes[0]
	lo, hi := quality.Wilson(9, 10, quality.DefaultZ)
	if g.Field != "group" || g.Label != "Billing" || g.N != 10 || g.Correct != 9 || g.Lower != lo || g.Upper != hi {
		t.Fatalf("group/Billing %+v, want 9 of 10 in (%g, %g)", g, lo, hi)
	}
	if ty := lp.Classes[1]; ty.Field != "type" || ty.N != 2 || ty.Correct != 1 {
		t.Fatalf("type/Refund %+v", ty)
	}
	if len(lp.Models) != 2 || lp.Models[0].N != 10 {
		t.Fatalf("models %+v", lp.Models)
	}
	text := mustRun(t, "status", "--no-helpdesk", "--nats", url)
	for _, want := range []string{
		"live precision (verdicts in OUTCOMES since",
		"FIELD", "LOWER 95%",
		fmt.Sprintf("group  Billing  10        9        90.0%%      %.1f%%", 100*lo),
		"type   Refund   2         1        50.0%",
		"model abcdef012345 on group: 9 of 10 correct",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	// Outside the window: nothing.
	since := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if text := mustRun(t, "status", "--no-helpdesk", "--precision-since", since, "--nats", url); !strings.Contains(text, "no verdicts yet") {
		t.Errorf("status with a window after every verdict:\n%s", text)
	}
	if text := mustRun(t, "status", "--no-helpdesk", "--precision-since", "", "--nats", url); strings.Contains(text, "live precision") {
		t.Errorf("status --precision-since '' still reads OUTCOMES:\n%s", text)
	}
	if r := run(t, "status", "--precision-since", "yesterday-ish", "--nats", url); r.code == 0 || !strings.Contains(r.stderr, "--precision-since") {
		t.Errorf("bad --precision-since: %+v", r)
	}
}

// TestBackfillReportLivePrecision: the verdicts on a live batch's tickets
// (after their decision outcomes) make the batch's live-precision table;
// verdicts on other tickets do not.
func TestBackfillReportLivePrecision(t *testing.T) {
	c, url := pipelineEnv(t)
	for id := int64(1); id <= 3; id++ {
		publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", id), ID: fmt.Sprint("o", id),
			Data: outcomeMsg(t, id, "b1", "Billing", 1, "Billing", 0.9)})
	}
	fb := func(id int64, v v1.Verdict) {
		publishT(t, c, pipeline.OutMsg{Subject: pipeline.OutcomeSubject("freshdesk", "acme", id), ID: fmt.Sprint("fb", id),
			Data: feedbackMsg(t, id, v1.OutcomeKind_OUTCOME_KIND_FEEDBACK, "group", "Billing", v)})
	}
	fb(1, v1.Verdict_VERDICT_CONFIRMED)
	fb(2, v1.Verdict_VERDICT_CONFIRMED)
	fb(3, v1.Verdict_VERDICT_OVERRIDDEN)
	fb(9, v1.Verdict_VERDICT_OVERRIDDEN) // not the batch's
	var rep backfillReport
	if err := json.Unmarshal([]byte(mustRun(t, "backfill", "report", "--batch", "b1", "--since", "1h", "--json", "--nats", url)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.LivePrecision == nil || len(rep.LivePrecision.Classes) != 1 || rep.LivePrecision.Classes[0].N != 3 || rep.LivePrecision.Classes[0].Correct != 2 {
		t.Fatalf("batch live precision %+v", rep.LivePrecision)
	}
	text := mustRun(t, "backfill", "report", "--batch", "b1", "--nats", url)
	if !strings.Contains(text, "live precision of the batch's applied and suggested values") || !strings.Contains(text, "66.7%") {
		t.Fatalf("report text:\n%s", text)
	}
}
