package classify

import (
	"slices"
	"testing"
)

// A label added in the helpdesk after the training data (a new group
// "Legal") is never predicted: a model's outputs are the labels it was
// trained on, whatever the ticket says. The writer and `autotriage status`
// report such a label as one without training examples until a model is
// trained with it.
func TestLabelWithoutExamplesIsNeverPredicted(t *testing.T) {
	m := testModel(t)
	trained := map[string][]string{}
	for _, f := range m.Metadata().Fields {
		trained[f.Name] = f.Labels
	}
	if slices.Contains(trained[FieldGroup], "Legal") {
		t.Fatal("the training data has a Legal group")
	}
	tickets := [][2]string{
		{"Legal", "Legal"},
		{"Question for the legal department", "Our lawyer needs the signed contract and the legal terms. Legal team please."},
		{"GDPR data deletion request under article 17", "As our legal counsel requires, delete all personal data. Legal."},
		{"Rechtsabteilung: Vertrag prüfen", "Bitte die Rechtsabteilung den Vertrag juristisch prüfen lassen."},
		{"", ""},
		{"zzzz qqqq", "xxxx yyyy"},
	}
	for _, ex := range genExamples(200, 99, 0) {
		tickets = append(tickets, [2]string{ex.Subject, ex.Body})
	}
	for i, tk := range tickets {
		for _, r := range []Result{m.Predict(tk[0], tk[1]), m.PredictTopK(tk[0], tk[1], 100)} {
			for _, f := range r.Fields {
				for _, lp := range f.Labels {
					if !slices.Contains(trained[f.Field], lp.Label) {
						t.Fatalf("ticket %d: field %s scored label %q the model was not trained on", i, f.Field, lp.Label)
					}
				}
				for _, l := range f.Selected {
					if !slices.Contains(trained[f.Field], l) {
						t.Fatalf("ticket %d: field %s predicted label %q the model was not trained on", i, f.Field, l)
					}
				}
			}
		}
	}
}
