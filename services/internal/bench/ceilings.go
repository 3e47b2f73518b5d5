package bench

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
	"github.com/autotriage/autotriage/services/internal/triage"
	"github.com/autotriage/autotriage/services/internal/writer"
)

// jsMsgsPerTicket is the stream messages a ticket costs the pipeline:
// TICKETS (fetcher), PREDICTIONS (classifier), OUTCOMES (writer). The bound
// counts each as one unit of the raw async ceiling (a publish plus a
// consume with ack), although OUTCOMES has no consumer among the stages.
const jsMsgsPerTicket = 3

// ceilingPasses is how many passes each component runs; the median counts.
const ceilingPasses = 3

// componentCeilings measures, one at a time and each alone in this process
// with every core, the per-ticket work no pipeline on this machine can
// avoid: the writer's HTTP calls to the simulator and the classifier's
// inference, and takes the JetStream share from the raw async ceiling
// already measured. The components would share the same cores in a
// pipeline, so their per-ticket times add: the bound is the harmonic sum
// of their rates. The KV ledger operations the writer makes for
// crash-safety are left out, so the bound is optimistic.
//
// fd and wcfg are the writer's settings as the scenario loaded them (the
// product defaults); fd.BaseURL is replaced by each pass's own simulator.
func (h *harness) componentCeilings(ctx context.Context, fd freshdesk.Settings, wcfg writer.Config, raw RawCeiling, n int) (*Ceilings, error) {
	c := &Ceilings{Tickets: n, Cores: runtime.GOMAXPROCS(0), HTTPWorkers: wcfg.Concurrency, HTTPCallsPerTicket: 1, InferenceWorkers: runtime.GOMAXPROCS(0), JSMsgsPerTicket: jsMsgsPerTicket}
	if wcfg.Notes {
		c.HTTPCallsPerTicket = 2
	}

	var passes []ceilingPass
	for pass := range ceilingPasses {
		p, err := httpPass(ctx, fd, wcfg, n, int64(10+pass))
		if err != nil {
			return nil, fmt.Errorf("simulator writes, pass %d: %w", pass+1, err)
		}
		passes = append(passes, p)
	}
	med := medianPass(passes)
	c.HTTPPerSec, c.HTTPCPUShare, c.HTTPCPUMsPerTicket = med.perSec, med.cpuShare, med.cpuMs

	tickets, err := ceilingTickets(n)
	if err != nil {
		return nil, fmt.Errorf("inference tickets: %w", err)
	}
	m, err := classify.Load(bytes.NewReader(h.model))
	if err != nil {
		return nil, fmt.Errorf("inference: load model: %w", err)
	}
	policy, err := triage.ParsePolicy(benchPolicy)
	if err != nil {
		return nil, fmt.Errorf("inference: policy: %w", err)
	}
	pred := triage.NewPredictor(m, policy, "bench")
	passes = passes[:0]
	for range ceilingPasses {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		passes = append(passes, inferencePass(pred, tickets, c.InferenceWorkers))
	}
	med = medianPass(passes)
	c.InferencePerSec, c.InferenceCPUShare, c.InferenceCPUMsPerTicket = med.perSec, med.cpuShare, med.cpuMs

	c.JSPerSec = raw.AsyncPerSec / jsMsgsPerTicket
	c.JSCPUShare = raw.AsyncCPUShare
	c.JSCPUMsPerTicket = raw.AsyncCPUMsPerMsg * jsMsgsPerTicket
	if c.HTTPPerSec > 0 && c.InferencePerSec > 0 && c.JSPerSec > 0 {
		c.BoundPerSec = 1 / (1/c.HTTPPerSec + 1/c.InferencePerSec + 1/c.JSPerSec)
	}
	if raw.AsyncPerSec > 0 {
		c.BoundRatioAsync = c.BoundPerSec / raw.AsyncPerSec
	}
	if ms := c.CPUMsPerTicket(); ms > 0 {
		c.BoundCPUPerSec = float64(c.Cores) * 1000 / ms
	}
	return c, nil
}

// ceilingPass is one timed pass of a component.
type ceilingPass struct {
	perSec   float64 // tickets/s
	cpuShare float64 // process CPU / (wall × GOMAXPROCS)
	cpuMs    float64 // process CPU per ticket, ms
}

func newCeilingPass(n int, wall, cpu time.Duration) ceilingPass {
	if n == 0 || wall <= 0 {
		return ceilingPass{}
	}
	return ceilingPass{
		perSec:   float64(n) / wall.Seconds(),
		cpuShare: cpu.Seconds() / (wall.Seconds() * float64(runtime.GOMAXPROCS(0))),
		cpuMs:    float64(cpu) / float64(time.Millisecond) / float64(n),
	}
}

// medianPass is the pass with the median rate (its CPU figures with it).
func medianPass(ps []ceilingPass) ceilingPass {
	s := slices.Clone(ps)
	slices.SortFunc(s, func(a, b ceilingPass) int {
		switch {
		case a.perSec < b.perSec:
			return -1
		case a.perSec > b.perSec:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// writeJob is what the writer sends for one ticket: the private note and
// the PUT with the ticket's true group, type, priority and tags plus the
// writer's own tag (as if every field were applied).
type writeJob struct {
	id   int64
	upd  ticketsystem.Update
	note string
}

// httpPass makes the writer's calls for n fresh untriaged tickets against a
// fresh simulator (unlimited plan) over loopback HTTP, through the real
// client with the writer's transport, from wcfg.Concurrency workers: per
// ticket one AddNote POST (when notes are on) then one UpdateTicket PUT, in
// the writer's order. Only the calls are timed.
func httpPass(ctx context.Context, fd freshdesk.Settings, wcfg writer.Config, n int, seed int64) (ceilingPass, error) {
	sim, err := freshdesksim.New(freshdesksim.Config{Seed: seed, Domain: "sim", Plan: "unlimited"})
	if err != nil {
		return ceilingPass{}, err
	}
	defer sim.Close()
	if err := sim.Generate(freshdesksim.GenerateOptions{New: n}); err != nil {
		return ceilingPass{}, err
	}
	srv, url, err := serve(sim)
	if err != nil {
		return ceilingPass{}, err
	}
	defer srv.Close()
	fd.BaseURL = url
	client, err := fd.NewClient(nil, nil, writer.MeterCredits(freshdesk.NewTransport()))
	if err != nil {
		return ceilingPass{}, err
	}
	ad := freshdesk.NewAdapter(client)

	jobs := make([]writeJob, 0, n)
	for _, id := range sim.TicketIDs() {
		t, ok := sim.Ticket(id)
		l, lok := sim.TrueLabels(id)
		if !ok || !lok {
			return ceilingPass{}, fmt.Errorf("ticket %d: no ticket or labels in the simulator", id)
		}
		jobs = append(jobs, writeJob{id: id, upd: writeUpdate(sim, t, l, wcfg.Tag), note: writeNote(l, id)})
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0 := processCPU()
	t0 := time.Now()
	for range max(wcfg.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) || cctx.Err() != nil {
					return
				}
				j := &jobs[i]
				var err error
				if wcfg.Notes {
					if _, err = ad.AddNote(cctx, j.id, ticketsystem.Note{BodyHTML: j.note}); err != nil {
						err = fmt.Errorf("add note to ticket %d: %w", j.id, err)
					}
				}
				if err == nil {
					if _, err = ad.UpdateTicket(cctx, j.id, j.upd); err != nil {
						err = fmt.Errorf("update ticket %d: %w", j.id, err)
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(t0), processCPU()-cpu0
	if firstErr != nil {
		return ceilingPass{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return ceilingPass{}, err
	}
	return newCeilingPass(len(jobs), wall, cpu), nil
}

// writeUpdate is the PUT the writer would send for ticket t when applying
// the true labels l: group, type, priority and the whole tag set (Freshdesk
// replaces it), so the adapter sends it without reading the ticket first.
func writeUpdate(sim *freshdesksim.Sim, t freshdesksim.Ticket, l freshdesksim.Labels, tag string) ticketsystem.Update {
	var u ticketsystem.Update
	gid := l.GroupID
	if gid == 0 {
		gid, _ = sim.GroupID(l.Group)
	}
	if gid != 0 {
		u.GroupID = &gid
	}
	if l.Type != "" {
		typ := l.Type
		u.Type = &typ
	}
	if l.Priority > 0 {
		prio := l.Priority
		u.Priority = &prio
	}
	tags := slices.Clone(t.Tags)
	for _, x := range append(slices.Clone(l.Tags), tag) {
		if x != "" && !slices.Contains(tags, x) {
			tags = append(tags, x)
		}
	}
	u.SetTags = tags
	return u
}

// writeNote is the note the writer posts for a prediction of l under the
// bench's policy (group and type applied, priority and tags suggested), with
// three runners-up per field (writer.NoteFor: the real text and size).
func writeNote(l freshdesksim.Labels, id int64) string {
	field := func(name, label string, d v1.Decision) *v1.FieldPrediction {
		return &v1.FieldPrediction{Field: name, Label: label, Decision: d, Confidence: 0.93, TopK: []*v1.LabelScore{
			{Label: label, Probability: 0.93}, {Label: "Other", Probability: 0.04},
			{Label: "Another", Probability: 0.02}, {Label: "Third", Probability: 0.01}}}
	}
	tags := field(writer.FieldTags, "", v1.Decision_DECISION_SUGGEST)
	tags.Labels = l.Tags
	return writer.NoteFor(&v1.Prediction{
		System: "freshdesk", Account: "sim", TicketId: id, ModelVersion: "20250101-000000",
		Fields: []*v1.FieldPrediction{
			field(writer.FieldGroup, l.Group, v1.Decision_DECISION_APPLY),
			field(writer.FieldType, l.Type, v1.Decision_DECISION_APPLY),
			field(writer.FieldPriority, strconv.Itoa(l.Priority), v1.Decision_DECISION_SUGGEST),
			tags,
		},
	})
}

// ceilingTickets is n generated untriaged tickets as the fetcher publishes
// them (fetcher.ToProto: subject and plain-text description), from a
// simulator of their own.
func ceilingTickets(n int) ([]*v1.Ticket, error) {
	sim, err := freshdesksim.New(freshdesksim.Config{Seed: 9, Domain: "sim", Plan: "unlimited"})
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	if err := sim.Generate(freshdesksim.GenerateOptions{New: n}); err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]*v1.Ticket, 0, n)
	for _, id := range sim.TicketIDs() {
		t, ok := sim.Ticket(id)
		if !ok {
			continue
		}
		nt := ticketsystem.Ticket{ID: t.ID, Subject: t.Subject, Description: t.DescriptionText, DescriptionHTML: t.Description,
			Tags: t.Tags, Type: t.Type, GroupID: t.GroupID, RequesterID: t.RequesterID, Priority: t.Priority, Status: t.Status,
			Source: t.Source, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
		out = append(out, fetcher.ToProto("freshdesk", "sim", &nt, "", v1.Arrival_ARRIVAL_POLL, now))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("simulator generated no tickets")
	}
	return out, nil
}

// inferencePass runs the classifier's per-ticket prediction path
// (triage.Predictor.Predict: the model's top-k over subject and description,
// then the policy's decisions) over every ticket from workers goroutines.
func inferencePass(p *triage.Predictor, tickets []*v1.Ticket, workers int) ceilingPass {
	var next atomic.Int64
	var fields atomic.Int64 // keeps the results observed
	var wg sync.WaitGroup
	cpu0 := processCPU()
	t0 := time.Now()
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := 0
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tickets) {
					break
				}
				k += len(p.Predict(tickets[i]))
			}
			fields.Add(int64(k))
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(t0), processCPU()-cpu0
	if fields.Load() == 0 {
		return ceilingPass{}
	}
	return newCeilingPass(len(tickets), wall, cpu)
}
