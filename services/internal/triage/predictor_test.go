package triage_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/triage"
)

// TestPredictorExplainsAndFindsSimilar: every predicted field carries terms
// of the ticket, and Similar gives three history tickets (by Freshdesk id),
// never the ticket itself.
func TestPredictorExplainsAndFindsSimilar(t *testing.T) {
	words := map[string]string{"Billing": "invoice", "Access": "password", "Hardware": "printer"}
	var ex []classify.Example
	for i := range 150 {
		for g, w := range words {
			typ := "Incident"
			if g == "Billing" {
				typ = "Question"
			}
			ex = append(ex, classify.Example{ID: fmt.Sprint(1000 + len(ex)), Subject: w + " issue",
				Body: fmt.Sprintf("hello, the %s does not work for user%c%c", w, 'a'+i%26, 'a'+i/26), Group: g, Type: typ})
		}
	}
	m, err := classify.Train(context.Background(), ex, classify.TrainOptions{Seed: 1, Folds: 2, Features: classify.FeatureOptions{HashBits: 14}})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := triage.ParsePolicy("group=suggest,type=suggest")
	if err != nil {
		t.Fatal(err)
	}
	p := triage.NewPredictor(m, policy, "v1")
	tk := &autotriagev1.Ticket{Id: 1003, Subject: "printer issue", DescriptionText: "hello, the printer does not work for userzz"}
	fps := p.Predict(tk)
	if len(fps) != 2 {
		t.Fatalf("%d fields", len(fps))
	}
	for _, fp := range fps {
		if len(fp.Terms) == 0 {
			t.Errorf("%s: no terms", fp.Field)
		}
		for _, term := range fp.Terms {
			if !strings.Contains(strings.ToLower(tk.Subject+" "+tk.DescriptionText), term.Text) || term.Weight <= 0 {
				t.Errorf("%s: term %v", fp.Field, term)
			}
		}
	}
	if fps[0].Label != "Hardware" || fps[0].Terms[0].Text != "printer" {
		t.Errorf("group %s, terms %v", fps[0].Label, fps[0].Terms)
	}
	sim := p.Similar(tk)
	if len(sim) != triage.SimilarCount {
		t.Fatalf("%d similar", len(sim))
	}
	for _, s := range sim {
		if s.TicketId == tk.Id || s.TicketId < 1000 || s.Labels["group"] != "Hardware" || s.Similarity <= 0 {
			t.Errorf("similar %v", s)
		}
	}
}
