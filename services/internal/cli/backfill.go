package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/outcomes"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/quality"
)

func init() {
	Register("backfill", "send past tickets through the pipeline (shadow) and report model vs agents", runBackfill)
}

// defaultThresholds are the confidence levels of the agreement report.
var defaultThresholds = []float64{0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98}

// freshdeskPriorities names Freshdesk's fixed priority codes, the labels the
// trainer learns (see collectExamples).
var freshdeskPriorities = map[int32]string{1: "Low", 2: "Medium", 3: "High", 4: "Urgent"}

func runBackfill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "backfill"
	f := newFlags(cmd, "--from DATE [--to DATE] [--mode shadow|live] [flags]  |  backfill report --batch ID [--since TIME]",
		"Send the tickets updated in [from, to) through the pipeline (fetcher Backfill, shadow mode by\n"+
			"default: nothing is written back), wait for their OUTCOMES, and report how often the model\n"+
			"agreed with what agents actually chose, per field and at each confidence threshold: the report\n"+
			"to read before switching a field from shadow to apply. `backfill report` re-reads a past batch.", stdout)
	var co connOpts
	co.register(f)
	from := f.String("from", "", "start of the range (RFC 3339, YYYY-MM-DD or a duration ago)")
	to := f.String("to", "", "end of the range, exclusive (default now)")
	mode := f.String("mode", "shadow", "shadow (record only) or live (the writer may act under the policy)")
	batch := f.String("batch", "", "batch id (default bf-<time>); re-using one resumes without duplicates")
	since := f.String("since", "24h", "report: read OUTCOMES stored since this time")
	wait := f.Duration("wait", 15*time.Minute, "how long to wait for the batch's outcomes")
	idle := f.Duration("idle", 2*time.Minute, "stop waiting when no outcome of the batch arrived for this long")
	thr := f.String("thresholds", "", "comma-separated confidence thresholds of the report (default 0,0.5,...,0.98)")
	asJSON := f.Bool("json", false, "print the report as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	thresholds := defaultThresholds
	if *thr != "" {
		if thresholds, err = parseThresholds(*thr); err != nil {
			return usagef(cmd, "backfill: --thresholds: %v", err)
		}
	}
	now := time.Now()
	if len(pos) > 0 {
		if pos[0] != "report" || len(pos) > 1 {
			return usagef(cmd, "backfill: unexpected argument %q", strings.Join(pos, " "))
		}
		if *batch == "" {
			return usagef(cmd, "backfill report: --batch is required")
		}
		start, err := parseTime(*since, now)
		if err != nil {
			return usagef(cmd, "backfill report: --since: %v", err)
		}
		conn, err := co.connectReady(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		col := newOutcomeCollector(*batch)
		if _, err := col.readFrom(ctx, conn, pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, StartTime: start}); err != nil {
			return err
		}
		rep := col.report(thresholds)
		if *asJSON {
			return writeJSON(stdout, rep)
		}
		return rep.print(stdout)
	}
	if *from == "" {
		return usagef(cmd, "backfill: --from is required")
	}
	fromT, err := parseTime(*from, now)
	if err != nil {
		return usagef(cmd, "backfill: --from: %v", err)
	}
	toT := now
	if *to != "" {
		if toT, err = parseTime(*to, now); err != nil {
			return usagef(cmd, "backfill: --to: %v", err)
		}
	}
	if !toT.After(fromT) {
		return usagef(cmd, "backfill: --to must be after --from")
	}
	if *mode != "shadow" && *mode != "live" {
		return usagef(cmd, "backfill: --mode must be shadow or live")
	}
	client, account, ok, err := helpdeskClient()
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("backfill needs FRESHDESK_DOMAIN or FRESHDESK_BASE_URL, and FRESHDESK_API_KEY")
	}
	if env, _ := loadEnv(); env.Helpdesk.Account != "" {
		account = env.Helpdesk.Account
	}
	conn, err := co.connectReady(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	fkv, err := conn.KV(ctx, pipeline.BucketFetcher)
	if err != nil {
		return err
	}
	wkv, err := conn.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		return err
	}
	ad := freshdesk.NewAdapter(client)
	cfg := fetcher.DefaultConfig()
	cfg.Account = account
	fe, err := fetcher.New(cfg, fetcher.Deps{System: "freshdesk", Account: account, Source: ad, Catalog: ad,
		Bus: conn, State: fkv, Ledger: ledger.New(wkv)})
	if err != nil {
		return err
	}
	outcomesFrom := time.Now().Add(-time.Second)
	prog := newProgress(stderr)
	start := time.Now()
	span := toT.Sub(fromT)
	br, err := fe.Backfill(ctx, fromT, toT, fetcher.BackfillOptions{BatchID: *batch, Live: *mode == "live",
		Progress: func(p fetcher.BackfillProgress) {
			frac := 0.0
			if !p.Through.IsZero() && span > 0 {
				frac = float64(p.Through.Sub(fromT)) / float64(span)
			}
			rl := client.RateLimit()
			budget := ""
			if rl.Known {
				budget = fmt.Sprintf(", API budget %d/%d", rl.Remaining, rl.Total)
			}
			prog.update("backfill: %d pages, %d tickets, %d published, %d already sent, %d skipped%s, ETA %s",
				p.Pages, p.Seen, p.Published, p.Duplicates, p.Skipped, budget, eta(time.Since(start), frac))
		}})
	if err != nil {
		return err
	}
	prog.done("backfill %s: %d tickets, %d published, %d already sent, %d skipped, %d invalid", br.BatchID,
		br.Seen, br.Published, br.Duplicates, br.Skipped, br.Invalid)
	expected := br.Published + br.Duplicates
	col := newOutcomeCollector(br.BatchID)
	if expected > 0 {
		if err := col.wait(ctx, conn, outcomesFrom, expected, *wait, *idle, prog); err != nil {
			return err
		}
	}
	rep := col.report(thresholds)
	rep.Expected = expected
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return rep.print(stdout)
}

func parseThresholds(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v < 0 || v > 1 {
			return nil, fmt.Errorf("%q is not a probability", p)
		}
		out = append(out, v)
	}
	sort.Float64s(out)
	return slices.Compact(out), nil
}

// outcomeCollector gathers the decision outcomes of one batch: the latest
// per prediction (a retried or replayed prediction's outcome supersedes the
// earlier one, see package outcomes).
type outcomeCollector struct {
	batch   string
	latest  outcomes.Latest
	lastSeq uint64
	// tickets of the batch (by their decision outcomes), and the verdicts
	// people gave on them afterwards (a live backfill's applied and
	// suggested values): the batch's live precision.
	tickets  map[int64]bool
	verdicts *quality.Tracker
	first    time.Time
}

func newOutcomeCollector(batch string) *outcomeCollector {
	return &outcomeCollector{batch: batch, tickets: map[int64]bool{}, verdicts: quality.NewTracker(quality.Options{MaxAge: -1})}
}

func (c *outcomeCollector) add(m pipeline.RawMsg) {
	c.lastSeq = max(c.lastSeq, m.Sequence)
	var o v1.Outcome
	if proto.Unmarshal(m.Data, &o) != nil {
		return
	}
	if o.Feedback != nil && c.tickets[o.TicketId] {
		c.verdicts.Observe(&o)
		return
	}
	if o.Kind != v1.OutcomeKind_OUTCOME_KIND_DECISION {
		return
	}
	if t := o.GetPrediction().GetTicket(); t == nil || t.BatchId != c.batch {
		return
	}
	if c.first.IsZero() {
		c.first = m.Time
	}
	c.tickets[o.TicketId] = true
	c.latest.Add(&o)
}

func (c *outcomeCollector) readFrom(ctx context.Context, conn *pipeline.Conn, ro pipeline.ReadOptions) (int, error) {
	return conn.Read(ctx, ro, func(m pipeline.RawMsg) error { c.add(m); return nil })
}

// wait reads OUTCOMES until expected outcomes of the batch arrived, nothing
// new came for idle, or max passed. Running out of patience is not an
// error: the report then covers what arrived and says so.
func (c *outcomeCollector) wait(ctx context.Context, conn *pipeline.Conn, from time.Time, expected int, maxWait, idle time.Duration, prog *progress) error {
	deadline := time.Now().Add(maxWait)
	lastNew := time.Now()
	ro := pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, StartTime: from}
	for {
		before := c.latest.Len()
		if _, err := c.readFrom(ctx, conn, ro); err != nil {
			return err
		}
		if c.lastSeq > 0 {
			ro = pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, StartSeq: c.lastSeq + 1}
		}
		if c.latest.Len() > before {
			lastNew = time.Now()
		}
		prog.update("waiting for outcomes: %d of %d", c.latest.Len(), expected)
		if c.latest.Len() >= expected {
			prog.done("all %d outcomes of the batch arrived", expected)
			return nil
		}
		if time.Now().After(deadline) || time.Since(lastNew) > idle {
			prog.done("stopped waiting: %d of %d outcomes arrived (is the classifier running with a promoted model, and the writer?)", c.latest.Len(), expected)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// thresholdRow is the agreement among predictions at or above a confidence.
type thresholdRow struct {
	Threshold float64 `json:"threshold"`
	Count     int     `json:"count"`
	Coverage  float64 `json:"coverage"`
	Agreement float64 `json:"agreement"`
}

// fieldAgreement compares one field's predictions with the agents' values.
type fieldAgreement struct {
	Field string `json:"field"`
	// N counts tickets where both a prediction and an agent's value exist.
	N         int            `json:"n"`
	Agree     int            `json:"agree"`
	Agreement float64        `json:"agreement"`
	ByLevel   []thresholdRow `json:"by_threshold"`
	// Decisions counts what the policy decided (shadow in a shadow backfill).
	Decisions map[string]int `json:"decisions"`
}

type backfillReport struct {
	Batch    string           `json:"batch"`
	Expected int              `json:"expected,omitempty"`
	Outcomes int              `json:"outcomes"`
	Models   []string         `json:"models"`
	Fields   []fieldAgreement `json:"fields"`
	// LivePrecision: what agents made of the values a live batch applied
	// or suggested (feedback in OUTCOMES on the batch's tickets); absent
	// for shadow batches, which write nothing.
	LivePrecision *livePrecision `json:"live_precision,omitempty"`
}

// actualValue is what the agents set on the (resolved) ticket, as the model
// names labels; ok is false when the ticket has no value for the field.
func actualValue(field string, t *v1.Ticket) ([]string, bool) {
	switch field {
	case "group":
		return []string{t.GroupName}, t.GroupName != ""
	case "priority":
		p, ok := freshdeskPriorities[t.Priority]
		return []string{p}, ok
	case "type":
		return []string{t.Type}, t.Type != ""
	case "tags":
		var tags []string
		for _, tg := range t.Tags {
			if tg != "autotriage" {
				tags = append(tags, tg)
			}
		}
		sort.Strings(tags)
		return tags, true
	}
	return nil, false
}

type sample struct {
	conf  float64
	agree bool
}

func (c *outcomeCollector) report(thresholds []float64) backfillReport {
	rep := backfillReport{Batch: c.batch, Outcomes: c.latest.Len()}
	if snap := c.verdicts.Snapshot(); len(snap) > 0 {
		rep.LivePrecision = &livePrecision{Since: c.first.UTC(), Window: c.verdicts.Options().Window,
			Classes: snap, Models: c.verdicts.ModelSnapshot()}
	}
	samples := map[string][]sample{}
	decisions := map[string]map[string]int{}
	models := map[string]bool{}
	for _, o := range c.latest.Outcomes() {
		p := o.GetPrediction()
		t := p.GetTicket()
		models[p.GetModelVersion()+" "+shortID(p.GetModelId())] = true
		for _, fp := range p.GetFields() {
			if decisions[fp.Field] == nil {
				decisions[fp.Field] = map[string]int{}
			}
			decisions[fp.Field][fp.Decision.Short()]++
			if len(fp.TopK) == 0 {
				continue // no model for the field
			}
			actual, ok := actualValue(fp.Field, t)
			if !ok {
				continue
			}
			var agree bool
			if fp.Field == "tags" {
				pred := slices.Clone(fp.Labels)
				sort.Strings(pred)
				agree = slices.Equal(pred, actual)
			} else {
				agree = fp.Label == actual[0]
			}
			samples[fp.Field] = append(samples[fp.Field], sample{fp.Confidence, agree})
		}
	}
	for m := range models {
		rep.Models = append(rep.Models, strings.TrimSpace(m))
	}
	sort.Strings(rep.Models)
	fields := make([]string, 0, len(decisions))
	for f := range decisions {
		fields = append(fields, f)
	}
	order := map[string]int{"group": 0, "priority": 1, "type": 2, "tags": 3}
	sort.Slice(fields, func(i, j int) bool {
		oi, iok := order[fields[i]]
		oj, jok := order[fields[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return fields[i] < fields[j]
	})
	for _, f := range fields {
		ss := samples[f]
		fa := fieldAgreement{Field: f, N: len(ss), Decisions: decisions[f]}
		for _, s := range ss {
			if s.agree {
				fa.Agree++
			}
		}
		fa.Agreement = ratio(fa.Agree, fa.N)
		for _, th := range thresholds {
			row := thresholdRow{Threshold: th}
			agree := 0
			for _, s := range ss {
				if s.conf >= th {
					row.Count++
					if s.agree {
						agree++
					}
				}
			}
			row.Coverage = ratio(row.Count, len(ss))
			row.Agreement = ratio(agree, row.Count)
			fa.ByLevel = append(fa.ByLevel, row)
		}
		rep.Fields = append(rep.Fields, fa)
	}
	return rep
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (r backfillReport) print(w io.Writer) error {
	fmt.Fprintf(w, "batch %s: %d outcome(s)", r.Batch, r.Outcomes)
	if r.Expected > 0 {
		fmt.Fprintf(w, " of %d ticket version(s) sent", r.Expected)
	}
	fmt.Fprintln(w)
	if len(r.Models) > 0 {
		fmt.Fprintf(w, "model(s): %s\n", strings.Join(r.Models, ", "))
	}
	if r.Outcomes == 0 {
		_, err := fmt.Fprintln(w, "no outcomes for this batch yet")
		return err
	}
	for _, f := range r.Fields {
		fmt.Fprintf(w, "\n== %s: model agreed with the agents on %d of %d tickets (%.1f%%)\n", f.Field, f.Agree, f.N, 100*f.Agreement)
		if f.N == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "confidence >=\ttickets\tcoverage\tagreement\t")
		for _, row := range f.ByLevel {
			agr := "-"
			if row.Count > 0 {
				agr = fmt.Sprintf("%.1f%%", 100*row.Agreement)
			}
			fmt.Fprintf(tw, "%.2f\t%d\t%.1f%%\t%s\t\n", row.Threshold, row.Count, 100*row.Coverage, agr)
		}
		tw.Flush()
	}
	if r.LivePrecision != nil {
		r.LivePrecision.print(w, "live precision of the batch's applied and suggested values")
	}
	_, err := fmt.Fprintln(w, "\nA field is ready for apply at the lowest threshold whose agreement meets your target;\n"+
		"set it with AUTOTRIAGE_POLICY, e.g. group=apply:0.9 (or a target precision, group=apply:p95).")
	return err
}
