package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// runThroughput is section 3: bursts of N tickets through the three stages
// with one and with two classifier replicas (polling), the raw JetStream
// ceiling on the same embedded server, the component ceilings (the upper
// bound any pipeline could reach here), and a paced webhook run for latency.
func (h *harness) runThroughput(ctx context.Context, rep *Report) error {
	n := h.o.Tickets
	pr := &PipelineRep{Tickets: n}
	rep.Pipeline = pr
	// The fetcher's defaults (poll every 30 s, 5 s overlap): the burst is
	// waiting in the helpdesk when the fetcher starts, so its first poll
	// (at once) reads all of it, as after a backlog; the interval never
	// enters the measurement.
	poll := scenario{plan: "unlimited", notes: true, deferFetch: true}

	for _, replicas := range []int{1, 2} {
		sc := poll
		sc.name = fmt.Sprintf("poll-%d", replicas)
		sc.replicas = replicas
		h.logf("pipeline: %d tickets, polling, %d classifier replica(s)", n, replicas)
		run, e, err := h.burst(ctx, sc, n)
		if err != nil {
			if e != nil {
				e.stop()
			}
			return err
		}
		if replicas == 1 {
			// The ceiling is measured right after, on the same server, with
			// messages the size of the TICKETS messages just published.
			pr.PayloadBytes = meanPayload(ctx, e)
			h.logf("pipeline: raw JetStream ceiling, %d messages of %d bytes", n, pr.PayloadBytes)
			raw, err := rawCeiling(ctx, e.srv.URL(), n, pr.PayloadBytes)
			if err != nil {
				e.stop()
				return fmt.Errorf("raw ceiling: %w", err)
			}
			pr.Raw = raw
		}
		fd, wcfg := e.cfg.Freshdesk, e.cfg.Writer
		e.stop()
		pr.Runs = append(pr.Runs, run)
		if replicas == 1 {
			// Right after the raw ceiling, with the stages stopped: what the
			// irreducible per-ticket work allows on this machine at all.
			h.logf("pipeline: component ceilings (simulator writes, inference), %d tickets, %d passes each", n, ceilingPasses)
			c, err := h.componentCeilings(ctx, fd, wcfg, pr.Raw, n)
			if err != nil {
				return fmt.Errorf("component ceilings: %w", err)
			}
			pr.Ceilings = c
		}
	}

	// Webhooks, paced well below the burst throughput, for latency: the
	// simulator posts a webhook per created ticket; polling stays on as the
	// safety net (every 30 s, too slow to matter here).
	sc := scenario{name: "webhook-1", plan: "unlimited", notes: true, replicas: 1, webhooks: true}
	count := max(n/4, 20)
	rate := 50.0
	h.logf("pipeline: %d tickets by webhook at %.0f/s", count, rate)
	e, err := h.start(ctx, sc)
	if err != nil {
		return err
	}
	gen := helpdeskgen.New(7)
	e.sim.ResetStats()
	cpu0 := processCPU()
	t0 := time.Now()
	ids, err := e.addTickets(ctx, gen, count, rate)
	if err != nil {
		e.stop()
		return err
	}
	done, err := e.waitOutcomes(ctx, ids, waitBudget(count), nil)
	if err != nil {
		e.stop()
		return err
	}
	run := e.summarize(sc, ids, done, t0, fmt.Sprintf("paced %.0f/s", rate))
	if done > 0 {
		run.CPUMsPerTicket = float64(processCPU()-cpu0) / float64(time.Millisecond) / float64(done)
	}
	run.Description = "webhooks (simulator → fetcher), 1 classifier, paced arrivals: latency without queueing"
	e.stop()
	pr.Runs = append(pr.Runs, run)

	for i := range pr.Runs {
		r := &pr.Runs[i]
		if pr.Raw.AsyncPerSec > 0 {
			r.RatioAsync = r.PerSec / pr.Raw.AsyncPerSec
		}
		if pr.Raw.SyncPerSec > 0 {
			r.RatioSync = r.PerSec / pr.Raw.SyncPerSec
		}
		// The paced run's rate is its arrival rate, not what it could do.
		if c := pr.Ceilings; c != nil && c.BoundPerSec > 0 && r.Arrival == "backlog" {
			r.ShareOfBound = r.PerSec / c.BoundPerSec
		}
		if c := pr.Ceilings; c != nil && c.CPUMsPerTicket() > 0 && r.Arrival == "backlog" {
			r.CPURatio = r.CPUMsPerTicket / c.CPUMsPerTicket()
		}
	}
	return nil
}

// burst puts a backlog of n untriaged tickets in the helpdesk (created over
// the last hour, as after an outage), then starts the fetcher, and waits
// until each has an outcome. Times count from the fetcher's start.
//
// The backlog is spread over the hour rather than created within a second
// or two: the change feed pages by key (updated_at) and falls back to
// offset pages only inside one second holding more than a page of tickets,
// where tickets the writer updates meanwhile shift the pages and others
// are skipped until a later poll (see BENCHMARKS.md).
func (h *harness) burst(ctx context.Context, sc scenario, n int) (PipeRun, *env, error) {
	e, err := h.start(ctx, sc)
	if err != nil {
		return PipeRun{}, nil, err
	}
	ids, err := e.addBacklog(n)
	if err != nil {
		return PipeRun{}, e, err
	}
	e.sim.ResetStats()
	cpu0 := processCPU()
	t0 := time.Now()
	e.mu.Lock()
	for _, id := range ids {
		e.created[id] = t0
	}
	e.mu.Unlock()
	if e.startFetcher != nil {
		e.startFetcher()
		e.startFetcher = nil
	}
	done, err := e.waitOutcomes(ctx, ids, waitBudget(n), nil)
	if err != nil {
		return PipeRun{}, e, err
	}
	run := e.summarize(sc, ids, done, t0, "backlog")
	if done > 0 {
		run.CPUMsPerTicket = float64(processCPU()-cpu0) / float64(time.Millisecond) / float64(done)
	}
	run.Description = fmt.Sprintf("a backlog of %d tickets (created over the last hour) waiting in the helpdesk when the fetcher starts (its defaults: poll every %s, overlap %s; the first poll runs at once), %d classifier replica(s): latency from the fetcher's start, so it includes queueing", n, e.cfg.Fetcher.PollInterval, e.cfg.Fetcher.Overlap, sc.replicas)
	return run, e, nil
}

// addBacklog has the simulator generate n untriaged tickets created over
// the last hour and returns their ids.
func (e *env) addBacklog(n int) ([]int64, error) {
	existing := map[int64]bool{}
	for _, id := range e.sim.TicketIDs() {
		existing[id] = true
	}
	if err := e.sim.Generate(freshdesksim.GenerateOptions{New: n}); err != nil {
		return nil, err
	}
	var ids []int64
	for _, id := range e.sim.TicketIDs() {
		if !existing[id] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// waitBudget is how long a run of n tickets may take before it is cut off.
func waitBudget(n int) time.Duration { return 60*time.Second + time.Duration(n)*50*time.Millisecond }

// summarize computes a run's figures from the recorded times.
func (e *env) summarize(sc scenario, ids []int64, done int, t0 time.Time, arrival string) PipeRun {
	ingest := "polling"
	if sc.webhooks {
		ingest = "webhooks"
	}
	r := PipeRun{Name: sc.name, Ingest: ingest, Arrival: arrival, Replicas: sc.replicas, Tickets: len(ids), Done: done, TimedOut: done < len(ids)}
	e.mu.Lock()
	var lat, hook []time.Duration
	var last time.Time
	correct, judged := 0, 0
	for _, id := range ids {
		o, ok := e.outcomes[id]
		if !ok {
			continue
		}
		if o.applied {
			r.Applied++
		}
		if o.at.After(last) {
			last = o.at
		}
		lat = append(lat, o.at.Sub(e.created[id]))
		if w, ok := e.hooked[id]; ok {
			hook = append(hook, o.at.Sub(w))
		}
		if truth, ok := e.sim.TrueLabels(id); ok && o.group != "" {
			judged++
			if truth.Group == o.group {
				correct++
			}
		}
	}
	e.mu.Unlock()
	if !last.IsZero() {
		r.Seconds = last.Sub(t0).Seconds()
		r.PerSec = float64(done) / r.Seconds
	}
	r.P50Ms, r.P99Ms = pctMs(lat)
	if len(hook) > 0 {
		r.HookP50Ms, r.HookP99Ms = pctMs(hook)
	}
	if judged > 0 {
		r.GroupAcc = float64(correct) / float64(judged)
	}
	r.Credits = e.sim.Stats().Total.Credits
	return r
}

func pctMs(d []time.Duration) (p50, p99 float64) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return ms(d[len(d)/2]), ms(d[min(len(d)-1, len(d)*99/100)])
}

// meanPayload is the mean data size of the first TICKETS messages.
func meanPayload(ctx context.Context, e *env) int {
	conn := e.rts[0].Conn
	total, n := 0, 0
	for seq := uint64(1); seq <= 50; seq++ {
		m, err := conn.GetMsg(ctx, pipeline.StreamTickets, seq)
		if err != nil {
			break
		}
		total += len(m.Data)
		n++
	}
	if n == 0 {
		return 1024
	}
	return total / n
}

// rawCeiling publishes n messages of size bytes to a file-backed stream on
// the server at url and consumes them with a durable pull consumer and
// explicit acks, publisher and consumer running at once on their own
// connections, with no processing: the median of three passes, once with
// asynchronous publishes (256 in flight) and once with one publish in
// flight at a time (each waits for its ack, as a stage's Publish does).
func rawCeiling(ctx context.Context, url string, n, size int) (RawCeiling, error) {
	r := RawCeiling{Messages: n}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	for _, async := range []bool{true, false} {
		type pass struct{ wall, cpu time.Duration }
		var passes []pass
		for i := range 3 {
			name := fmt.Sprintf("BENCHRAW_%v_%d", async, i)
			d, cpu, err := rawPass(ctx, url, name, n, payload, async)
			if err != nil {
				return r, err
			}
			passes = append(passes, pass{d, cpu})
		}
		slices.SortFunc(passes, func(a, b pass) int { return cmp.Compare(a.wall, b.wall) })
		med := passes[1]
		secs := med.wall.Seconds()
		if async {
			r.AsyncSeconds, r.AsyncPerSec = secs, float64(n)/secs
			cp := newCeilingPass(n, med.wall, med.cpu)
			r.AsyncCPUShare, r.AsyncCPUMsPerMsg = cp.cpuShare, cp.cpuMs
		} else {
			r.SyncSeconds, r.SyncPerSec = secs, float64(n)/secs
		}
	}
	return r, nil
}

// rawPass returns the wall time from the consumer's start to the last
// message consumed, and this process's CPU time over the same span.
func rawPass(ctx context.Context, url, stream string, n int, payload []byte, async bool) (time.Duration, time.Duration, error) {
	var cpu0 time.Duration
	d, err := pipeline.RawPass(ctx, url, stream, n, payload, async, func() { cpu0 = processCPU() })
	if err != nil {
		return 0, 0, err
	}
	return d, processCPU() - cpu0, nil
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
