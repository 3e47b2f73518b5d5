package pipelinetest

import (
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
)

// ticketCount is the number of tickets of the webhook-and-poll test
// (AUTOTRIAGE_E2E_TICKETS overrides it, e.g. for a quick local run).
func ticketCount(def int) int {
	if n, err := strconv.Atoi(os.Getenv("AUTOTRIAGE_E2E_TICKETS")); err == nil && n > 0 {
		return n
	}
	return def
}

// TestWebhookAndPoll: 1,000 generated tickets arrive; the simulator fires a
// "ticket created" webhook for each, but one in five reaches the fetcher
// with a wrong secret and is refused, so only polling can bring those in.
// Every ticket ends with exactly one outcome for its first version, the
// fields are applied where the policy says so and nothing else changes, and
// each ticket has one note exactly when something was suggested or applied.
func TestWebhookAndPoll(t *testing.T) {
	e := newEnv(t, envOptions{})
	rejected := func(id int64) bool { return id%5 == 0 }
	e.hook.setReject(rejected)
	e.startAll()

	n := ticketCount(1000)
	ids := e.arrive(n, 150)
	log := e.outcomes()
	t.Cleanup(func() {
		if t.Failed() {
			e.logPolls(ids)
		}
	})
	d := log.waitAll(t, ids, 150*time.Second)

	// How each ticket's first version entered the pipeline.
	arrival := map[int64]v1.Arrival{}
	for _, tk := range e.readTickets() {
		if _, ok := arrival[tk.Id]; !ok {
			arrival[tk.Id] = tk.Arrival
		}
	}
	var byWebhook, byPoll, refused int
	for _, id := range ids {
		switch arrival[id] {
		case v1.Arrival_ARRIVAL_WEBHOOK:
			byWebhook++
		case v1.Arrival_ARRIVAL_POLL:
			byPoll++
		}
		if !rejected(id) {
			continue
		}
		st := e.hook.statusesOf(id)
		if !slices.Contains(st, http.StatusUnauthorized) || slices.ContainsFunc(st, func(c int) bool { return c/100 == 2 }) {
			t.Errorf("ticket %d: the fetcher answered its webhooks %v, want 401 only", id, st)
		}
		refused++
		if arrival[id] != v1.Arrival_ARRIVAL_POLL {
			t.Errorf("ticket %d: its webhook was refused, yet it arrived by %s, not by polling", id, arrival[id])
		}
	}
	if refused == 0 || byWebhook < (n-refused)/10 {
		t.Errorf("arrivals: %d by webhook, %d by polling, %d webhooks refused; want polling to catch the refused ones and webhooks to bring in a good share of the rest", byWebhook, byPoll, refused)
	}

	summary := verifyTickets(t, e, ids, d, verifyOptions{Notes: true})
	// The notes owed: one per ticket whose first prediction suggests or
	// applies something.
	preds := firstPredictions(e)
	owed, notes := 0, 0
	for _, id := range ids {
		if p := preds[id]; p != nil && hasSuggestOrApply(p) {
			owed++
		}
		notes += len(e.sim.Notes(id))
	}
	if notes != owed {
		t.Errorf("%d notes in the simulator, want %d (predictions with a suggest or apply decision)", notes, owed)
	}
	st := e.sim.Stats()
	t.Logf("%s; arrivals: %d webhook, %d poll (%d webhooks refused); API calls %d; webhooks %+v", summary, byWebhook, byPoll, refused, st.Total.Calls, st.Webhooks)
}
