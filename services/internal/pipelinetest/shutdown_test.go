package pipelinetest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// shutdownSlack is what a stage may take past AUTOTRIAGE_SHUTDOWN_TIMEOUT
// between the SIGTERM and its exit: signal delivery, process exit and
// reaping on a loaded machine. The assertion is a deadline, not a speed.
const shutdownSlack = 2 * time.Second

// shutdownBudget is the stages' AUTOTRIAGE_SHUTDOWN_TIMEOUT.
func (e *env) shutdownBudget() time.Duration {
	e.t.Helper()
	d, err := time.ParseDuration(e.baseEnv["AUTOTRIAGE_SHUTDOWN_TIMEOUT"])
	if err != nil {
		e.t.Fatalf("AUTOTRIAGE_SHUTDOWN_TIMEOUT: %v", err)
	}
	return d
}

// terminate sends SIGTERM and returns how long the process took to exit.
func (p *proc) terminate(t *testing.T) time.Duration {
	t.Helper()
	if !p.alive() {
		t.Fatalf("%s exited early: %v\n%s", p.name, p.exitErr, tail(p.logPath, 20))
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start)
	case <-time.After(2 * time.Minute):
		p.kill()
		t.Fatalf("%s did not exit within 2 minutes of SIGTERM", p.name)
		return 0
	}
}

// requireExitWithin fails unless the stage exited within the budget plus
// the slack after its SIGTERM.
func requireExitWithin(t *testing.T, p *proc, took, budget time.Duration) {
	t.Helper()
	if took > budget+shutdownSlack {
		t.Fatalf("%s exited %s after SIGTERM; AUTOTRIAGE_SHUTDOWN_TIMEOUT is %s (+%s slack)\n%s",
			p.name, took.Round(time.Millisecond), budget, shutdownSlack, tail(p.logPath, 30))
	}
	t.Logf("%s exited %s after SIGTERM (budget %s): %v", p.name, took.Round(time.Millisecond), budget, p.exitErr)
}

// metric sums the samples of a metric family on the stage's /metrics whose
// labels contain match.
func (p *proc) metric(name, match string) float64 {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.debug + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0
	}
	var sum float64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+"{") && strings.Contains(l, match) {
			if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

func (p *proc) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatalf("read the log of %s: %v", p.name, err)
	}
	return string(b)
}

// TestSIGTERMUnderLoad stops each stage with SIGTERM in the middle of its
// work: it exits within AUTOTRIAGE_SHUTDOWN_TIMEOUT, cleanly (exit 0,
// having finished the work in hand rather than cancelling it), and once
// restarted every ticket ends with exactly the outcomes expected: nothing
// lost, nothing done twice.
func TestSIGTERMUnderLoad(t *testing.T) {
	e := newEnv(t, envOptions{})
	budget := e.shutdownBudget()
	e.startAll()
	log := e.outcomes()
	var all []int64

	t.Run("writer", func(t *testing.T) {
		// Slow writes, so hundreds of predictions are waiting and some are
		// being written when the signal comes.
		e.sim.SetFault("tickets.update", freshdesksim.Fault{Latency: 80 * time.Millisecond})
		e.sim.SetFault("tickets.notes", freshdesksim.Fault{Latency: 80 * time.Millisecond})
		defer e.sim.SetFault("tickets.update", freshdesksim.Fault{})
		defer e.sim.SetFault("tickets.notes", freshdesksim.Fault{})
		const n = 400
		ids := e.arrive(n, 200)
		all = append(all, ids...)
		w := e.stages["writer"]
		eventually(t, 60*time.Second, "the writer at work", func() (bool, string) {
			log.refresh()
			done, running := countOutcomes(log.decisions(), ids), w.metric("autotriage_handlers_in_flight", `stage="writer"`)
			return done >= 30 && running > 0, fmt.Sprintf("%d outcomes, %.0f handlers in flight", done, running)
		})
		log.refresh()
		before := countOutcomes(log.decisions(), ids)
		preds := e.streamCount(pipeline.StreamPredictions)
		took := w.terminate(t)
		requireExitWithin(t, w, took, budget)
		if w.exitErr != nil {
			t.Errorf("the writer exited with %v after a drain that fitted the budget\n%s", w.exitErr, tail(w.logPath, 20))
		}
		if strings.Contains(w.log(t), "cancelling in-flight handlers") {
			t.Errorf("the writer cancelled handlers although its drain had the budget to finish them")
		}
		if before >= n {
			t.Fatalf("the writer finished all %d tickets before SIGTERM; the test proves nothing", n)
		}
		t.Logf("SIGTERM with %d of %d outcomes published, %d predictions in the stream", before, n, preds)
		e.startStage("writer")
		d := log.waitAll(t, ids, 120*time.Second)
		t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
	})

	t.Run("classifier", func(t *testing.T) {
		const n = 200
		before := e.streamCount(pipeline.StreamPredictions)
		wait := e.arriveAsync(n, 60)
		eventually(t, 60*time.Second, "the classifier at work", func() (bool, string) {
			got := e.streamCount(pipeline.StreamPredictions) - before
			return got >= 20, fmt.Sprintf("%d predictions", got)
		})
		c := e.stages["classifier"]
		took := c.terminate(t)
		got := e.streamCount(pipeline.StreamPredictions) - before
		requireExitWithin(t, c, took, budget)
		if c.exitErr != nil {
			t.Errorf("the classifier exited with %v\n%s", c.exitErr, tail(c.logPath, 20))
		}
		e.startStage("classifier")
		ids := wait()
		all = append(all, ids...)
		if got >= n {
			t.Fatalf("the classifier finished all %d tickets before SIGTERM; the test proves nothing", got)
		}
		t.Logf("SIGTERM after %d of %d predictions", got, n)
		d := log.waitAll(t, ids, 120*time.Second)
		t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
	})

	t.Run("fetcher", func(t *testing.T) {
		// A slow tickets list keeps a poll in flight, a slow ticket view
		// keeps webhooks in flight (the fetcher reads the ticket of each).
		e.sim.SetFault("tickets.list", freshdesksim.Fault{Latency: 400 * time.Millisecond})
		e.sim.SetFault("tickets.view", freshdesksim.Fault{Latency: 300 * time.Millisecond})
		wait := e.arriveAsync(200, 50)
		f := e.stages["fetcher"]
		eventually(t, 60*time.Second, "a poll and webhooks in flight", func() (bool, string) {
			polls, hooks := e.lists.inFlight.Load(), e.hook.inFlight.Load()
			return polls > 0 && hooks > 0, fmt.Sprintf("%d tickets lists and %d webhooks in flight", polls, hooks)
		})
		hooks := e.hook.inFlight.Load()
		took := f.terminate(t)
		requireExitWithin(t, f, took, budget)
		if f.exitErr != nil {
			t.Errorf("the fetcher exited with %v\n%s", f.exitErr, tail(f.logPath, 20))
		}
		t.Logf("SIGTERM with a poll and %d webhooks in flight", hooks)
		e.sim.SetFault("tickets.list", freshdesksim.Fault{})
		e.sim.SetFault("tickets.view", freshdesksim.Fault{})
		e.startStage("fetcher")
		ids := wait()
		all = append(all, ids...)
		t.Cleanup(func() {
			if t.Failed() {
				e.logPolls(ids)
			}
		})
		d := log.waitAll(t, ids, 120*time.Second)
		t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
	})

	// Across all phases: still one outcome per version, one note per ticket.
	log.refresh()
	verifyTickets(t, e, all, log.decisions(), verifyOptions{Notes: true})
}

var handedBack = regexp.MustCompile(`"msg":"handler cancelled by the shutdown; message handed back".*"subject":"predictions\.[^.]+\.[^.]+\.(\d+)"`)

// TestSIGTERMDrainCannotFinish: the writer's handlers hang on Freshdesk
// writes that the simulator holds for two minutes (then answers 503), so
// its drain cannot finish. SIGTERM still ends the process within
// AUTOTRIAGE_SHUTDOWN_TIMEOUT: the handlers are cancelled at the work
// deadline and their messages handed back; the restarted writer gets them
// again and every ticket ends with exactly the outcomes expected.
func TestSIGTERMDrainCannotFinish(t *testing.T) {
	e := newEnv(t, envOptions{})
	budget := e.shutdownBudget()
	e.startAll()
	log := e.outcomes()
	hang := freshdesksim.Fault{Latency: 2 * time.Minute, ErrorRate: 1, Status: http.StatusServiceUnavailable}
	e.sim.SetFault("tickets.update", hang)
	e.sim.SetFault("tickets.notes", hang)

	ids := e.arrive(60, 60)
	w := e.stages["writer"]
	eventually(t, 60*time.Second, "writer handlers hanging on Freshdesk", func() (bool, string) {
		n := w.metric("autotriage_handlers_in_flight", `stage="writer"`)
		return n >= 3, fmt.Sprintf("%.0f handlers in flight", n)
	})
	running := w.metric("autotriage_handlers_in_flight", `stage="writer"`)
	took := w.terminate(t)
	requireExitWithin(t, w, took, budget)
	text := w.log(t)
	if !strings.Contains(text, "drain deadline passed; cancelling in-flight handlers") {
		t.Fatalf("the writer's log does not say its drain was cut at the deadline\n%s", tail(w.logPath, 30))
	}
	back := map[int64]bool{}
	for _, m := range handedBack.FindAllStringSubmatch(text, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		back[id] = true
	}
	if len(back) == 0 {
		t.Fatalf("no message handed back by the cancelled handlers\n%s", tail(w.logPath, 30))
	}
	t.Logf("SIGTERM with %.0f handlers hanging; %d messages handed back (tickets %v)", running, len(back), head(keys(back), 10))

	e.sim.SetFault("tickets.update", freshdesksim.Fault{})
	e.sim.SetFault("tickets.notes", freshdesksim.Fault{})
	e.startStage("writer")
	d := log.waitAll(t, ids, 120*time.Second)
	for id := range back {
		if len(d[id]) == 0 {
			t.Errorf("ticket %d: handed back at the shutdown, never redelivered to an outcome", id)
		}
	}
	t.Log(verifyTickets(t, e, ids, d, verifyOptions{Notes: true}))
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
