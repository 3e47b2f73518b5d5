package pipelinetest

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
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
//
// Which path brings an accepted ticket in first is a race between the
// webhook and the next poll (on a slow machine polling wins most), so the
// test asserts what each webhook was answered, once the simulator has
// attempted every one, not the share of arrivals by webhook.
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
	log.waitAll(t, ids, 150*time.Second)

	// Every outcome can be in while the simulator still works through its
	// webhook queue (those tickets came in by polling); a webhook's answer
	// is known once it was attempted. A failed delivery is retried only
	// minutes later, so each ticket's first attempt is what is asserted.
	var hooks freshdesksim.WebhookStats
	eventually(t, 3*time.Minute, "every ticket's webhook attempted", func() (bool, string) {
		hooks = e.sim.Stats().Webhooks
		var waiting []int64
		for _, id := range ids {
			if len(e.hook.statusesOf(id)) == 0 {
				waiting = append(waiting, id)
			}
		}
		return len(waiting) == 0 && hooks.Delivered+hooks.Failed >= hooks.Queued,
			fmt.Sprintf("webhooks %+v; %d tickets without an answered webhook, e.g. %v", hooks, len(waiting), head(waiting, 10))
	})
	// A late webhook re-reads the ticket after autotriage wrote to it: any
	// version it published has had its outcome once the stages are idle.
	e.waitIdle(t, time.Minute)
	log.refresh()
	d := log.decisions()

	// How each ticket's first version entered the pipeline.
	arrival := map[int64]v1.Arrival{}
	for _, tk := range e.readTickets() {
		if _, ok := arrival[tk.Id]; !ok {
			arrival[tk.Id] = tk.Arrival
		}
	}
	var byWebhook, byPoll, refused, unavailable int
	for _, id := range ids {
		switch arrival[id] {
		case v1.Arrival_ARRIVAL_WEBHOOK:
			byWebhook++
		case v1.Arrival_ARRIVAL_POLL:
			byPoll++
		}
		st := e.hook.statusesOf(id)
		if !rejected(id) {
			// Accepted: 202 (published, or already published by a poll),
			// or 503 if the fetch or publish failed transiently; never a
			// refusal.
			if slices.ContainsFunc(st, func(c int) bool { return c != http.StatusAccepted && c != http.StatusServiceUnavailable }) {
				t.Errorf("ticket %d: the fetcher answered its webhooks %v, want 202 (or 503)", id, st)
			}
			if slices.Contains(st, http.StatusServiceUnavailable) {
				unavailable++
			}
			continue
		}
		if !slices.Contains(st, http.StatusUnauthorized) || slices.ContainsFunc(st, func(c int) bool { return c/100 == 2 }) {
			t.Errorf("ticket %d: the fetcher answered its webhooks %v, want 401 only", id, st)
		}
		refused++
		if arrival[id] != v1.Arrival_ARRIVAL_POLL {
			t.Errorf("ticket %d: its webhook was refused, yet it arrived by %s, not by polling", id, arrival[id])
		}
	}
	// The webhook path must bring some tickets in first (the earliest ones
	// at least, before the next poll): none means it publishes nothing.
	if refused == 0 || byWebhook == 0 || byWebhook+byPoll != n {
		t.Errorf("arrivals: %d by webhook, %d by polling of %d, %d webhooks refused; want polling to catch the refused ones and webhooks to bring in some of the rest", byWebhook, byPoll, n, refused)
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
	t.Logf("%s; arrivals: %d webhook, %d poll (%d webhooks refused, %d answered 503); API calls %d; webhooks %+v",
		summary, byWebhook, byPoll, refused, unavailable, st.Total.Calls, st.Webhooks)
}
