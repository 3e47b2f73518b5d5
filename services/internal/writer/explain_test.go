package writer

import (
	"strings"
	"testing"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
)

func explained(f *v1.FieldPrediction, terms ...string) *v1.FieldPrediction {
	for i, t := range terms {
		f.Terms = append(f.Terms, &v1.Term{Text: t, Weight: 1 / float64(i+1)})
	}
	return f
}

var similarTickets = []*v1.SimilarTicket{
	{TicketId: 501, ExampleId: "501", Subject: "Invoice charged twice", Labels: map[string]string{"group": "Billing", "type": "Question"}, Similarity: 0.91},
	{TicketId: 502, ExampleId: "502", Subject: "<script>alert(1)</script>", Labels: map[string]string{"group": "Billing"}, Similarity: 0.72},
	{ExampleId: "csv-7", Subject: strings.Repeat("long subject ", 100), Labels: map[string]string{"group": "Access", "tags": "a, b"}, Similarity: 0.5},
	{TicketId: 504, ExampleId: "504", Subject: "fourth: never shown", Similarity: 0.4},
}

// TestNoteShowsTermsAndSimilarTickets: the note posted to the simulator
// lists the terms per noted field and the three similar tickets linked to
// the agent view; the outcome carries the same explanation (it holds the
// whole prediction).
func TestNoteShowsTermsAndSimilarTickets(t *testing.T) {
	h := newHarness(t, options{writer: func(c *Config) { c.TicketURL = "https://acme.freshdesk.com/a/tickets/{id}" }})
	obs := h.observer()
	id := h.ticket(freshdesksim.NewTicket{Subject: "Invoice 42 is wrong", Description: "I was charged twice."})
	obs.poll()
	h.run()
	pred := predictionFrom(h.published()[id][0], explained(apply(FieldGroup, "Billing"), "invoice", "charged twice", "<b>x</b>"),
		explained(suggest(FieldType, "Question"), "wrong"))
	pred.Similar = similarTickets
	h.publish(pred, "explained")
	outs := h.settle(1)
	notes := h.sim.Notes(id)
	if len(notes) != 1 {
		t.Fatalf("%d notes", len(notes))
	}
	body := notes[0].Body
	for _, want := range []string{
		"because of: <i>invoice</i> 1.00, <i>charged twice</i> 0.50, <i>&lt;b&gt;x&lt;/b&gt;</i> 0.33",
		"because of: <i>wrong</i> 1.00",
		`<a href="https://acme.freshdesk.com/a/tickets/501">#501</a> Invoice charged twice (Group Billing, Type Question), similarity 91%`,
		`<a href="https://acme.freshdesk.com/a/tickets/502">#502</a> &lt;script&gt;`,
		"<li>csv-7 long subject",
		"(Group Access, Tags a, b), similarity 50%",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("note lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>x") || strings.Contains(body, "fourth") || strings.Count(body, "<a href") != 2 {
		t.Errorf("note not escaped or not capped:\n%s", body)
	}
	if len(body) > 4000 {
		t.Errorf("note of %d bytes", len(body))
	}
	out := only(t, outs, id)
	if p := out.GetPrediction(); len(p.GetSimilar()) != len(similarTickets) || len(p.GetFields()[0].GetTerms()) != 3 {
		t.Errorf("outcome lost the explanation: %v", p)
	}
}

func TestTicketURLConfig(t *testing.T) {
	for _, u := range []string{"ftp://x/{id}", "https://x/tickets/", "javascript:{id}"} {
		c := testConfig()
		c.TicketURL = u
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "AUTOTRIAGE_TICKET_URL") {
			t.Errorf("%q: %v", u, err)
		}
	}
}
