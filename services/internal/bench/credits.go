package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
)

// creditScale compresses simulated time: one simulated minute (the
// rate-limit window) passes in one real second, and the fetcher's default
// 30 s poll interval is scaled to match (its default 5 s overlap is in
// simulated time already, since it is subtracted from updated_at).
const creditScale = 60

// arrivalPerSimMin is the arrival rate of section 4: one ticket per simulated
// second, well inside the Growth plan's budget with notes (2 credits each).
const arrivalPerSimMin = 60.0

// runCredits is section 4: API credits per triaged ticket on the polling
// path with the fetcher's defaults, without and with notes (unlimited plan),
// and under the Growth plan (200 credits a minute) with notes.
func (h *harness) runCredits(ctx context.Context, rep *Report) error {
	cr := &CreditsRep{TimeScale: creditScale}
	rep.Credits = cr
	poll := fetcher.DefaultConfig().PollInterval / creditScale
	runs := []struct {
		name, plan string
		notes      bool
		noReread   bool
		target     float64
		budget     int
	}{
		// The default writer reads each ticket before writing it (+1).
		{"polling, no notes", "unlimited", false, false, 2.05, 0},
		{"polling, notes", "unlimited", true, false, 3.05, 0},
		// The credit-saving opt-in, AUTOTRIAGE_WRITER_REREAD=false.
		{"polling, no notes, no re-read", "unlimited", false, true, 1.05, 0},
		{"polling, notes, no re-read", "unlimited", true, true, 2.05, 0},
		// Growth leaves 160 credits a minute after the default 20% reserve:
		// 60 tickets a minute with notes need about 186 with the re-read
		// (the writer paces and falls behind, by design) and about 126
		// without, so the Growth row runs the opt-in.
		{"polling, notes, no re-read, Growth plan", "growth", true, true, 2.05, 200},
	}
	for i, r := range runs {
		sc := scenario{name: fmt.Sprintf("credits-%d", i), plan: r.plan, timeScale: creditScale, notes: r.notes, replicas: 1, poll: poll,
			noReread: r.noReread}
		h.logf("freshdesk: %s, %d tickets at %.0f per simulated minute (time x%d)", r.name, h.o.CreditTickets, arrivalPerSimMin, creditScale)
		e, err := h.start(ctx, sc)
		if err != nil {
			return err
		}
		run, err := e.creditRun(ctx, h.o.CreditTickets, int64(20+i))
		e.stop()
		if err != nil {
			return err
		}
		run.Name, run.Plan, run.Notes, run.Target, run.BudgetPerMin = r.name, r.plan, r.notes, r.target, r.budget
		if r.budget > 0 && run.SimMinutes > 0 {
			run.BudgetShare = float64(run.Credits) / (float64(r.budget) * run.SimMinutes)
		}
		cr.Runs = append(cr.Runs, run)
	}
	return nil
}

func (e *env) creditRun(ctx context.Context, n int, seed int64) (CreditRun, error) {
	run := CreditRun{Tickets: n, ArrivalPerMin: arrivalPerSimMin}
	e.sim.ResetStats()
	realRate := arrivalPerSimMin / 60 * creditScale // tickets per real second
	gen := helpdeskgen.New(seed)
	t0 := time.Now()
	// Credits per simulated minute, sampled once a real second.
	var lastCredits int64
	lastSample := t0
	sample := func() {
		if time.Since(lastSample) < time.Second {
			return
		}
		c := e.sim.Stats().Total.Credits
		if d := c - lastCredits; d > run.PeakMinute {
			run.PeakMinute = d
		}
		lastCredits, lastSample = c, time.Now()
	}
	type added struct {
		ids []int64
		err error
	}
	ch := make(chan added, 1)
	go func() {
		ids, err := e.addTickets(ctx, gen, n, realRate)
		ch <- added{ids, err}
	}()
	var a added
	tick := time.NewTicker(100 * time.Millisecond)
loop:
	for {
		select {
		case a = <-ch:
			break loop
		case <-tick.C:
			sample()
		}
	}
	tick.Stop()
	if a.err != nil {
		return run, a.err
	}
	done, err := e.waitOutcomes(ctx, a.ids, waitBudget(n), sample)
	if err != nil {
		return run, err
	}
	elapsed := time.Since(t0)
	st := e.sim.Stats()
	run.Done, run.TimedOut = done, done < n
	run.Credits = st.Total.Credits
	run.RateLimited = st.RateLimited
	run.Endpoints = endpointsCredits(st)
	run.SimMinutes = elapsed.Minutes() * creditScale
	if done > 0 {
		run.PerTicket = float64(run.Credits) / float64(done)
	}
	e.mu.Lock()
	for _, id := range a.ids {
		if o, ok := e.outcomes[id]; ok && o.note {
			run.NotesWritten++
		}
	}
	e.mu.Unlock()
	return run, nil
}
