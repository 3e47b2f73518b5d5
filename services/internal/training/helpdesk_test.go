package training_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/training"
)

// TestHistoryWithLargeTickets: training reads the same change feed as the
// poll, against the simulator over HTTP. A resolved ticket with more text
// than the classifier reads becomes an example whose body is cut to
// classify.MaxRawBytes; one too large to read even alone (client limit
// 1 MiB here) is left out and counted; the rest of the history is read.
func TestHistoryWithLargeTickets(t *testing.T) {
	sim, err := freshdesksim.New(freshdesksim.Config{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if err := sim.Generate(freshdesksim.GenerateOptions{History: 40}); err != nil {
		t.Fatal(err)
	}
	gid, ok := sim.GroupID("Billing")
	if !ok {
		t.Fatal("no Billing group")
	}
	resolved := func(subject, body string) int64 {
		id, err := sim.AddTicket(freshdesksim.NewTicket{Subject: subject, Description: body})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.AgentUpdate(id, map[string]any{"status": 4, "group_id": gid, "type": "Question"}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	logLine := "2024-05-01T10:00:00Z ERROR [billing-export] invoice 12345 failed: timeout after 30s\n"
	long := resolved("Invoice export fails", "<div>The invoice export fails, log below.</div><pre>"+strings.Repeat(logLine, 400<<10/len(logLine))+"</pre>")
	huge := resolved("Everything attached", "<div>"+strings.Repeat(logLine, 2<<20/len(logLine))+"</div>")

	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	c, err := freshdesk.New(freshdesk.Config{BaseURL: hs.URL, APIKey: "sim-admin-key", MaxRetries: -1, MaxResponseBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ad := freshdesk.NewAdapter(c)
	cat, err := ad.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var last training.Progress
	exs, err := training.FromHelpdesk(context.Background(), ad, cat, training.Options{Since: time.Now().AddDate(-1, 0, 0),
		Progress: func(p training.Progress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if last.Unreadable != 1 {
		t.Errorf("Progress.Unreadable %d; want 1", last.Unreadable)
	}
	found := false
	for _, ex := range exs {
		switch ex.ID {
		case strconv.FormatInt(huge, 10):
			t.Errorf("the unreadable ticket became an example")
		case strconv.FormatInt(long, 10):
			found = true
			if len(ex.Body) > classify.MaxRawBytes || len(ex.Body) < classify.MaxRawBytes-4 || !strings.HasPrefix(ex.Body, "The invoice export fails") {
				t.Errorf("long ticket's body is %d bytes; want it cut to %d", len(ex.Body), classify.MaxRawBytes)
			}
		}
	}
	if !found || len(exs) < 41 {
		t.Fatalf("%d examples (long ticket found: %v); want the 40 generated and the long one", len(exs), found)
	}
}
