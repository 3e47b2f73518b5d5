package pipelinetest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// TestStagesKilled kills each stage with SIGKILL in the middle of its work
// and restarts it: no ticket is lost (each gets its outcome), none gets a
// second outcome for a version or a second note. The fetcher is killed in
// the middle of a multi-page poll, and its restarted replica resumes from
// the cursor stored in KV (minus the overlap), not from
// AUTOTRIAGE_FETCHER_START.
func TestStagesKilled(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Slow the writes so the writer is caught with work in flight.
	e.sim.SetFault("tickets.update", freshdesksim.Fault{Latency: 40 * time.Millisecond})
	e.sim.SetFault("tickets.notes", freshdesksim.Fault{Latency: 40 * time.Millisecond})
	e.startAll()
	log := e.outcomes()
	var all []int64

	t.Run("writer", func(t *testing.T) {
		ids := e.arrive(150, 300)
		all = append(all, ids...)
		eventually(t, 60*time.Second, "the writer at work", func() (bool, string) {
			log.refresh()
			n := countOutcomes(log.decisions(), ids)
			return n >= 15, fmt.Sprintf("%d outcomes", n)
		})
		e.stages["writer"].kill()
		log.refresh()
		if n := countOutcomes(log.decisions(), ids); n >= len(ids) {
			t.Fatalf("the writer finished all %d tickets before it was killed; the test proves nothing", n)
		} else {
			t.Logf("writer killed after %d of %d outcomes", n, len(ids))
		}
		e.startStage("writer")
		d := log.waitAll(t, ids, 90*time.Second)
		t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
	})

	t.Run("classifier", func(t *testing.T) {
		const n = 150
		before := e.streamCount(pipeline.StreamPredictions)
		wait := e.arriveAsync(n, 40)
		eventually(t, 60*time.Second, "the classifier at work", func() (bool, string) {
			got := e.streamCount(pipeline.StreamPredictions) - before
			return got >= 20, fmt.Sprintf("%d predictions", got)
		})
		e.stages["classifier"].kill()
		got := e.streamCount(pipeline.StreamPredictions) - before
		e.startStage("classifier")
		ids := wait()
		all = append(all, ids...)
		if got >= n {
			t.Fatalf("the classifier finished all %d tickets before it was killed; the test proves nothing", got)
		}
		t.Logf("classifier killed after %d of %d predictions", got, n)
		d := log.waitAll(t, ids, 90*time.Second)
		t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
	})

	t.Run("fetcher", func(t *testing.T) {
		// Polling only, and a slow tickets list, so a poll spans several
		// pages and seconds. The writer waits until everything is fetched,
		// so no write reorders the pages being read (see
		// bugPollSkipsShiftedTickets).
		e.hook.setDrop(true)
		e.stages["writer"].stop(t)
		e.sim.SetFault("tickets.list", freshdesksim.Fault{Latency: 400 * time.Millisecond})
		callsBefore := len(e.lists.snapshot())
		ids := e.arrive(250, 1000)
		all = append(all, ids...)
		var cut time.Time
		eventually(t, 60*time.Second, "a poll past its first page", func() (bool, string) {
			calls := e.lists.snapshot()[callsBefore:]
			for i, c := range calls {
				if c.page >= 2 && i > 0 {
					cut = c.at
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d list calls", len(calls))
		})
		e.stages["fetcher"].kill()
		killedAt := time.Now()
		cur, ok := e.cursor()
		if !ok {
			t.Fatal("no cursor stored after a poll")
		}
		published := e.streamCount(pipeline.StreamTickets)
		t.Logf("fetcher killed during page 2+ of a poll (page requested at %s); cursor %s", cut.Format(time.StampMilli), cur.UpdatedAt)
		e.sim.SetFault("tickets.list", freshdesksim.Fault{})
		e.startStage("fetcher")
		var first listCall
		eventually(t, 30*time.Second, "the restarted fetcher's first poll", func() (bool, string) {
			for _, c := range e.lists.snapshot() {
				if c.at.After(killedAt) {
					first = c
					return true, ""
				}
			}
			return false, "no poll yet"
		})
		overlap := 2 * time.Second
		if want := cur.UpdatedAt.Add(-overlap); !first.since.Equal(want) {
			t.Errorf("the restarted fetcher polled from %s, want the stored cursor %s minus the overlap = %s", first.since, cur.UpdatedAt, want)
		}
		if !first.since.After(e.start) {
			t.Errorf("the restarted fetcher polled from %s, AUTOTRIAGE_FETCHER_START (%s), not from its cursor", first.since, e.start)
		}
		// Everything is fetched and classified before the writer returns.
		eventually(t, 60*time.Second, "every ticket in PREDICTIONS", func() (bool, string) {
			have := map[int64]bool{}
			for _, p := range e.readPredictions() {
				have[p.TicketId] = true
			}
			missing := 0
			for _, id := range ids {
				if !have[id] {
					missing++
				}
			}
			return missing == 0, fmt.Sprintf("%d of %d missing (%d TICKETS messages when killed)", missing, len(ids), published)
		})
		e.startStage("writer")
		d := log.waitAll(t, ids, 90*time.Second)
		t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
	})

	// Across all phases: still one outcome per version, one note per ticket.
	log.refresh()
	verifyTickets(t, e, all, log.decisions(), verifyOptions{Notes: true})
}

func countOutcomes(d map[int64][]*v1.Outcome, ids []int64) int {
	n := 0
	for _, id := range ids {
		if len(d[id]) > 0 {
			n++
		}
	}
	return n
}

// TestRateLimitsAndFaults runs the pipeline against a helpdesk that fails:
// bursts of 5xx on every endpoint the stages call (ticket views, lists,
// updates, notes), then an outage in which every update and note answers
// 503 for a few seconds. Everything lands, nothing is written twice, and
// the clients back off: during the outage the calls stay far below what a
// retry loop without pauses would make, and overall the calls stay within
// a small multiple of the work. (429s without Retry-After are left out:
// see the report on the client's pacer.)
func TestRateLimitsAndFaults(t *testing.T) {
	e := newEnv(t, envOptions{})
	const (
		updateBurst = 12
		notesBurst  = 12
		listBurst   = 4
		viewBurst   = 8
	)
	e.sim.SetFault("tickets.update", freshdesksim.Fault{Burst: updateBurst, Status: http.StatusServiceUnavailable})
	e.sim.SetFault("tickets.notes", freshdesksim.Fault{Burst: notesBurst, Status: http.StatusBadGateway})
	e.sim.SetFault("tickets.list", freshdesksim.Fault{Burst: listBurst, Status: http.StatusInternalServerError})
	e.sim.SetFault("tickets.view", freshdesksim.Fault{Burst: viewBurst, Status: http.StatusServiceUnavailable})
	e.startAll()
	log := e.outcomes()

	ids := e.arrive(120, 60)
	t.Cleanup(func() {
		if t.Failed() {
			e.logPolls(ids)
		}
	})
	log.waitAll(t, ids, 120*time.Second)

	// The outage: every update and note is refused with 503 while new tickets wait to be written.
	const outage = 4 * time.Second
	before := e.sim.Stats()
	e.sim.SetFault("tickets.update", freshdesksim.Fault{ErrorRate: 1, Status: http.StatusServiceUnavailable})
	e.sim.SetFault("tickets.notes", freshdesksim.Fault{ErrorRate: 1, Status: http.StatusServiceUnavailable})
	more := e.arrive(60, 60)
	ids = append(ids, more...)
	eventually(t, 60*time.Second, "the writer meeting the outage", func() (bool, string) {
		st := e.sim.Stats()
		n := st.Endpoints["tickets.notes"].ByStatus[503] + st.Endpoints["tickets.update"].ByStatus[503] -
			before.Endpoints["tickets.notes"].ByStatus[503] - before.Endpoints["tickets.update"].ByStatus[503]
		return n > 0, "no refused write yet"
	})
	time.Sleep(outage) // the outage lasts a while (not an assertion)
	during := e.sim.Stats()
	e.sim.SetFault("tickets.update", freshdesksim.Fault{})
	e.sim.SetFault("tickets.notes", freshdesksim.Fault{})
	writes := func(s freshdesksim.Stats) int64 {
		return s.Endpoints["tickets.update"].Calls + s.Endpoints["tickets.notes"].Calls
	}
	outageCalls := writes(during) - writes(before)

	d := log.waitAll(t, ids, 120*time.Second)
	summary := verifyTickets(t, e, ids, d, verifyOptions{Notes: true})

	st := e.sim.Stats()
	ok2xx := func(ep string) (ok, failed int64) {
		for code, n := range st.Endpoints[ep].ByStatus {
			if code/100 == 2 {
				ok += n
			} else {
				failed += n
			}
		}
		return ok, failed
	}
	// Predictions that wrote something, and tickets written to.
	puts, written, notes := 0, 0, 0
	for _, id := range ids {
		notes += len(e.sim.Notes(id))
		n := 0
		for _, out := range d[id] {
			if slices.ContainsFunc(out.Fields, func(f *v1.FieldOutcome) bool {
				return (f.Action == v1.Action_ACTION_APPLIED && f.Reason == "applied") || f.Action == v1.Action_ACTION_SUGGESTED
			}) {
				n++ // a note is always followed by the PUT with the tag
			}
		}
		puts += n
		if n > 0 {
			written++
		}
	}
	var report []string
	for _, ep := range []string{"tickets.update", "tickets.notes", "tickets.list", "tickets.view"} {
		ok, failed := ok2xx(ep)
		report = append(report, fmt.Sprintf("%s %d ok/%d failed", ep, ok, failed))
	}
	t.Logf("%s; %s; %d update and note calls during the %s outage; 429s %d, total calls %d; webhooks %+v",
		summary, strings.Join(report, ", "), outageCalls, outage, st.RateLimited, st.Total.Calls, st.Webhooks)

	// At most one successful PUT per prediction written (a later version's
	// prediction whose note already exists needs none), at least one per
	// ticket written to; one note post per note.
	if ok, _ := ok2xx("tickets.update"); ok > int64(puts) || ok < int64(written) {
		t.Errorf("%d successful PUTs for %d tickets and %d predictions written to, want between", ok, written, puts)
	}
	if ok, _ := ok2xx("tickets.notes"); ok != int64(notes) {
		t.Errorf("%d successful note posts but %d notes", ok, notes)
	}
	if _, failed := ok2xx("tickets.view"); failed < viewBurst {
		t.Errorf("only %d failed ticket views; the burst of %d did not hit", failed, viewBurst)
	}
	// Back-off. During the outage the writer has at most its concurrency
	// (4) predictions in flight, each retried a few times by the client
	// and then redelivered after a delay; a client retrying at once would
	// make thousands of calls in these seconds (a refused call on loopback
	// takes about a millisecond).
	if outageCalls > 250 {
		t.Errorf("%d update and note calls during a %s outage; want at most 250: the writer hammers instead of backing off", outageCalls, outage)
	}
	// Overall: the work is two views (the webhook's and the writer's read
	// before its write), one note and one PUT per ticket and a few lists
	// and catalog reads; a redelivery reads the ticket again, but failures
	// and retries must not multiply the work.
	if bound := int64(7*len(ids)) + 200; st.Total.Calls > bound {
		t.Errorf("%d API calls for %d tickets, want at most %d", st.Total.Calls, len(ids), bound)
	}
}

// TestPersonChangesGroup: tickets are fetched and classified while the
// writer is down; a person then sets the group of some of them, and the
// fetcher's poll observes the change (the ledger's seen record). When the
// writer starts, it leaves those groups as the person set them (the
// outcome says skipped, changed by a person) and applies the others. The
// writer does not read the ticket before writing (AUTOTRIAGE_WRITER_REREAD
// defaults to false): it relies on the fetcher's observation.
func TestPersonChangesGroup(t *testing.T) {
	e := newEnv(t, envOptions{Env: map[string]string{
		"AUTOTRIAGE_POLICY": "group=apply:0.01,type=shadow,priority=shadow,tags=shadow",
	}})
	e.startStage("fetcher")
	e.startStage("classifier")
	ids := e.arrive(24, 50)

	first := map[int64]*v1.Prediction{}
	eventually(t, 60*time.Second, "a prediction for every ticket", func() (bool, string) {
		first = firstPredictions(e)
		n := 0
		for _, id := range ids {
			if first[id] != nil {
				n++
			}
		}
		return n == len(ids), fmt.Sprintf("%d of %d predicted", n, len(ids))
	})

	// Every group name the simulator knows, from the tickets' true labels.
	var groups []string
	for _, id := range e.sim.TicketIDs() {
		if l, ok := e.sim.TrueLabels(id); ok && l.Group != "" && !slices.Contains(groups, l.Group) {
			groups = append(groups, l.Group)
		}
	}
	changed := map[int64]int64{} // ticket -> the person's group id
	changedAt := map[int64]time.Time{}
	for i, id := range ids {
		if i%3 != 0 {
			continue
		}
		gf := predFieldOf(first[id], "group")
		if gf == nil || gf.Decision != v1.Decision_DECISION_APPLY {
			t.Fatalf("ticket %d: group decision %v, want APPLY under group=apply:0.01", id, gf)
		}
		var pick string
		for _, g := range groups {
			if g != gf.Label {
				pick = g
				break
			}
		}
		gid, ok := e.sim.GroupID(pick)
		if !ok {
			t.Fatalf("no group %q in the simulator", pick)
		}
		if err := e.sim.AgentUpdate(id, map[string]any{"group_id": gid}); err != nil {
			t.Fatalf("agent update of %d: %v", id, err)
		}
		tk, _ := e.sim.Ticket(id)
		changed[id], changedAt[id] = gid, tk.UpdatedAt
	}
	// The fetcher's poll observes every change before the writer runs.
	eventually(t, 60*time.Second, "the fetcher to observe the person's changes", func() (bool, string) {
		for id, at := range changedAt {
			s, ok := e.seen(id)
			if !ok || s.UpdatedAt.Before(at) || s.GroupID != changed[id] {
				return false, fmt.Sprintf("ticket %d: seen %+v, want the version of %s with group %d", id, s, at, changed[id])
			}
		}
		return true, ""
	})
	// Let the new versions be classified too, then start the writer.
	eventually(t, 60*time.Second, "the changed versions classified", func() (bool, string) {
		n := 0
		for _, p := range e.readPredictions() {
			if at, ok := changedAt[p.TicketId]; ok && !p.TicketUpdatedAt.AsTime().Before(at) {
				n++
			}
		}
		return n >= len(changed), fmt.Sprintf("%d of %d", n, len(changed))
	})
	e.startStage("writer")

	log := e.outcomes()
	var d map[int64][]*v1.Outcome
	eventually(t, 90*time.Second, "an outcome for every prediction", func() (bool, string) {
		log.refresh()
		d = log.decisions()
		want := len(e.readPredictions())
		got := 0
		for _, outs := range d {
			got += len(outs)
		}
		return got >= want, fmt.Sprintf("%d outcomes for %d predictions", got, want)
	})
	for _, id := range ids {
		tk, _ := e.sim.Ticket(id)
		var firstOut *v1.Outcome
		for _, out := range d[id] {
			if out.TicketUpdatedAt.AsTime().Equal(first[id].TicketUpdatedAt.AsTime()) {
				firstOut = out
			}
		}
		if firstOut == nil {
			t.Errorf("ticket %d: no outcome for its first version", id)
			continue
		}
		gf := fieldOf(firstOut, "group")
		if gid, ok := changed[id]; ok {
			if tk.GroupID != gid {
				t.Errorf("ticket %d: a person set group %d, the writer left %d", id, gid, tk.GroupID)
			}
			if gf == nil || gf.Action != v1.Action_ACTION_SKIPPED || gf.Reason != "changed by a person after the predicted version" {
				t.Errorf("ticket %d: group outcome %v, want SKIPPED: changed by a person after the predicted version", id, gf)
			}
			for _, out := range d[id] {
				if f := fieldOf(out, "group"); f != nil && f.Action == v1.Action_ACTION_APPLIED && f.Reason == "applied" {
					t.Errorf("ticket %d: an outcome for version %s applied group %q over the person's", id, out.TicketUpdatedAt.AsTime(), f.NewValue)
				}
			}
			continue
		}
		want, _ := e.sim.GroupID(predFieldOf(first[id], "group").Label)
		if gf == nil || gf.Action != v1.Action_ACTION_APPLIED || tk.GroupID != want {
			t.Errorf("ticket %d: untouched by a person, group outcome %v and group %d, want applied %d", id, gf, tk.GroupID, want)
		}
	}
	t.Logf("%d tickets, %d changed by a person", len(ids), len(changed))
}

// TestMalformedWebhooks posts bodies Freshdesk would never send and events
// the fetcher does not know: each gets a 4xx, nothing reaches TICKETS, the
// 400s are dead-lettered with their bodies, and the fetcher keeps running
// and serving (a valid webhook afterwards is accepted and published).
func TestMalformedWebhooks(t *testing.T) {
	e := newEnv(t, envOptions{NoWebhooks: true})
	f := e.startStage("fetcher")
	url := "http://" + e.baseEnv["AUTOTRIAGE_WEBHOOK_ADDR"] + fetcher.WebhookPath

	post := func(method, body, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set(hookHdr, token)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s webhook: %v (fetcher alive: %v)", method, err, f.alive())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadLettered := []string{
		`this is not json`,
		``,
		`[]`,
		`null`,
		`{"freshdesk_webhook": "a string"}`,
		`{"freshdesk_webhook":{"ticket_subject":"no id"}}`,
		`{"freshdesk_webhook":{"ticket_id":"abc","triggered_event":"{ticket_action:created}"}}`,
		`{"freshdesk_webhook":{"ticket_id":"-4","triggered_event":"{ticket_action:created}"}}`,
		`{"freshdesk_webhook":{"ticket_id":"1","triggered_event":"{ticket_action:deleted}"}}`,
		`{"freshdesk_webhook":{"ticket_id":"1","triggered_event":"{merged:{from:1,to:2}}"}}`,
		`{"freshdesk_webhook":{"ticket_id":"1","triggered_event":"not an event"}}`,
		`{"freshdesk_webhook":{"ticket_id":"1","triggered_event":"{status:{from:x,to:2}}"}}`,
	}
	for _, body := range deadLettered {
		code, reply := post(http.MethodPost, body, secret)
		if code != http.StatusBadRequest {
			t.Errorf("body %q: status %d (%s), want 400", body, code, reply)
		}
	}
	big := `{"freshdesk_webhook":{"ticket_id":"1","ticket_description":"` + strings.Repeat("x", 70<<10) + `"}}`
	refused := []struct {
		name, method, body, token string
		want                      int
	}{
		{"too large", http.MethodPost, big, secret, http.StatusRequestEntityTooLarge},
		{"wrong secret", http.MethodPost, `{"freshdesk_webhook":{"ticket_id":"1"}}`, badSecret, http.StatusUnauthorized},
		{"no secret", http.MethodPost, `{"freshdesk_webhook":{"ticket_id":"1"}}`, "", http.StatusUnauthorized},
		{"GET", http.MethodGet, "", secret, http.StatusMethodNotAllowed},
	}
	for _, c := range refused {
		if code, reply := post(c.method, c.body, c.token); code != c.want {
			t.Errorf("%s: status %d (%s), want %d", c.name, code, reply, c.want)
		}
	}

	if !f.alive() {
		t.Fatalf("the fetcher exited: %v\n%s", f.exitErr, tail(f.logPath, 20))
	}
	if code, err := f.get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("fetcher /healthz: %d %v", code, err)
	}
	if n := e.streamCount(pipeline.StreamTickets); n != 0 {
		t.Errorf("%d messages in TICKETS after only bad webhooks, want 0", n)
	}
	// The DLQ holds exactly the bodies answered 400.
	var dlq []string
	_, err := e.conn.Read(e.ctx, pipeline.ReadOptions{Stream: pipeline.StreamDLQ, Subject: pipeline.DLQSubject(fetcher.Stage, account), Idle: 3 * time.Second}, func(m pipeline.RawMsg) error {
		dlq = append(dlq, string(m.Data))
		return nil
	})
	if err != nil {
		t.Fatalf("read the DLQ: %v", err)
	}
	for _, body := range deadLettered {
		if !slices.Contains(dlq, body) {
			t.Errorf("the DLQ lacks the body %q", body)
		}
	}
	for _, body := range dlq {
		if !slices.Contains(deadLettered, body) {
			t.Errorf("the DLQ has a body that was not answered 400: %.80q", body)
		}
	}

	// Still serving: a valid webhook for a real ticket is accepted and
	// published.
	id, err := e.sim.AddTicket(freshdesksim.NewTicket{Subject: "Cannot log in", Description: "Password reset mail never arrives."})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `{"freshdesk_webhook":{"ticket_id":"%d","triggered_event":"{ticket_action:created}"}}`, id)
	if code, reply := post(http.MethodPost, buf.String(), secret); code != http.StatusAccepted {
		t.Errorf("valid webhook after the bad ones: status %d (%s), want 202", code, reply)
	}
	eventually(t, 30*time.Second, "the ticket in TICKETS", func() (bool, string) {
		n := e.streamCount(pipeline.StreamTickets)
		return n == 1, fmt.Sprintf("%d messages", n)
	})
	if !f.alive() {
		t.Fatalf("the fetcher exited: %v", f.exitErr)
	}
}
