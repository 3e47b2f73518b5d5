// Package trainer is the long-running trainer: it keeps the helpdesk's
// resolved history up to date incrementally (a cursor in KV, the examples in
// the model registry), retrains on a schedule and on request, promotes a
// challenger only when a safety gate on the most recent weeks (held out by
// time) finds it no worse than the champion beyond noise on any field, and
// rolls a promotion back by itself when the new model's live precision falls
// below its predecessor's. Every model it stores carries its lineage.
package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
	"github.com/autotriage/autotriage/services/internal/training"
)

// Config is the trainer's configuration (environment variables).
type Config struct {
	Interval    time.Duration `env:"AUTOTRIAGE_TRAINER_INTERVAL" envDefault:"24h" help:"how often the trainer reads new resolved tickets and retrains"`
	Holdout     time.Duration `env:"AUTOTRIAGE_TRAINER_HOLDOUT" envDefault:"336h" help:"the most recent span of resolved tickets held out to gate a new model (default 14 days)"`
	History     time.Duration `env:"AUTOTRIAGE_TRAINER_HISTORY" envDefault:"8760h" help:"how far back the first run reads the helpdesk's history (default 365 days)"`
	MaxExamples int           `env:"AUTOTRIAGE_TRAINER_MAX_EXAMPLES" envDefault:"50000" help:"the newest resolved tickets kept to train on"`
	// MaxBytes bounds the kept tickets' text (the oldest go first);
	// MinExamples is the fewest labelled tickets before the held-out
	// window to train on. Zero: 128 MiB and 20.
	MaxBytes    int64
	MinExamples int
	MinHoldout  int           `env:"AUTOTRIAGE_TRAINER_MIN_HOLDOUT" envDefault:"30" help:"fewest held-out tickets; a quieter window is widened back in time to this many"`
	CheckEvery  time.Duration `env:"AUTOTRIAGE_TRAINER_CHECK_EVERY" envDefault:"1m" help:"how often a promoted model's live precision is compared with its predecessor's"`
	// Rollback rule: see shouldRollBack.
	RollbackMinSample int     `env:"AUTOTRIAGE_TRAINER_ROLLBACK_MIN_SAMPLE" envDefault:"50" help:"live outcomes per field each model needs before the trainer may roll back"`
	RollbackMargin    float64 `env:"AUTOTRIAGE_TRAINER_ROLLBACK_MARGIN" envDefault:"0.02" help:"least drop of live precision below the predecessor's that rolls back (the statistical margin applies when larger)"`
	// Seed of training and the bootstrap (zero: 1).
	Seed uint64
}

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 128 << 20
	}
	if c.MinExamples <= 0 {
		c.MinExamples = 20
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Validate checks the settings.
func (c Config) Validate() error {
	switch {
	case c.Interval < time.Minute:
		return errors.New("AUTOTRIAGE_TRAINER_INTERVAL: at least 1m")
	case c.Holdout <= 0:
		return errors.New("AUTOTRIAGE_TRAINER_HOLDOUT: must be positive")
	case c.History <= 0:
		return errors.New("AUTOTRIAGE_TRAINER_HISTORY: must be positive")
	case c.MaxExamples < 100:
		return errors.New("AUTOTRIAGE_TRAINER_MAX_EXAMPLES: at least 100")
	case c.MinHoldout < 1:
		return errors.New("AUTOTRIAGE_TRAINER_MIN_HOLDOUT: at least 1")
	case c.CheckEvery < time.Second:
		return errors.New("AUTOTRIAGE_TRAINER_CHECK_EVERY: at least 1s")
	case c.RollbackMinSample < 1 || c.RollbackMargin < 0 || c.RollbackMargin >= 1:
		return errors.New("AUTOTRIAGE_TRAINER_ROLLBACK_MIN_SAMPLE: at least 1; _MARGIN: in [0,1)")
	}
	return nil
}

// DefaultConfig is Config with its documented defaults.
func DefaultConfig() Config {
	return Config{Interval: 24 * time.Hour, Holdout: 14 * 24 * time.Hour, History: 365 * 24 * time.Hour,
		MaxExamples: 50000, MaxBytes: 128 << 20, MinExamples: 20, MinHoldout: 30, CheckEvery: time.Minute,
		RollbackMinSample: 50, RollbackMargin: 0.02, Seed: 1}
}

// Evidence is live precision per model and field, from what agents did
// with the values a model applied or suggested (quality.Tracker).
type Evidence interface {
	ModelPrecision(modelID, field string) (n, correct int)
}

// Publisher stores a message in its stream (*pipeline.Conn).
type Publisher interface {
	Publish(ctx context.Context, m pipeline.OutMsg) (pipeline.PubAck, error)
}

// Helpdesk is what the trainer reads of the ticket system.
type Helpdesk interface {
	ticketsystem.ChangeFeed
	ticketsystem.CatalogReader
}

// Deps are the trainer's collaborators.
type Deps struct {
	KV       *pipeline.KV // pipeline.BucketPolicy
	Store    *modelstore.Store
	Bus      Publisher
	Helpdesk Helpdesk
	// Evidence may be nil: then no promotion is ever rolled back by itself.
	Evidence Evidence
	// System and Account name the helpdesk in outcome subjects.
	System, Account string
	// IgnoreTag is autotriage's own tag, never learnt.
	IgnoreTag  string
	Log        *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Train, when set, replaces the training options (Seed from Config
	// still applies); tests use fewer folds.
	Train *classify.TrainOptions
}

// Trainer is the continuous trainer.
type Trainer struct {
	cfg Config
	d   Deps
	m   metrics
}

type metrics struct {
	runs      *prometheus.CounterVec
	examples  prometheus.Gauge
	rollbacks prometheus.Counter
}

// New builds a trainer; Open builds one from a connection.
func New(cfg Config, d Deps) (*Trainer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.KV == nil || d.Store == nil || d.Bus == nil || d.Helpdesk == nil {
		return nil, errors.New("trainer: KV, Store, Bus and Helpdesk are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.System == "" {
		d.System = "freshdesk"
	}
	t := &Trainer{cfg: cfg, d: d, m: metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autotriage_trainer_runs_total",
			Help: "Training runs by result: promoted, kept, unchanged, skipped, failed; examples_reset counts kept examples found unreadable."}, []string{"result"}),
		examples: prometheus.NewGauge(prometheus.GaugeOpts{Name: "autotriage_trainer_examples",
			Help: "Resolved tickets the trainer keeps to train on."}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "autotriage_trainer_rollbacks_total",
			Help: "Promotions the trainer undid because live precision fell below the predecessor's."}),
	}}
	if d.Registerer != nil {
		for _, c := range []prometheus.Collector{t.m.runs, t.m.examples, t.m.rollbacks} {
			if err := d.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("trainer metrics: %w", err)
			}
		}
	}
	return t, nil
}

// Open builds a trainer on conn (the admin role): the policy bucket, the
// model registry and OUTCOMES. Fields of d already set are kept.
func Open(ctx context.Context, conn *pipeline.Conn, cfg Config, d Deps) (*Trainer, error) {
	var err error
	if d.KV == nil {
		if d.KV, err = conn.KV(ctx, pipeline.BucketPolicy); err != nil {
			return nil, err
		}
	}
	if d.Store == nil {
		if err := conn.EnsureModelStore(ctx); err != nil {
			return nil, fmt.Errorf("create the model registry: %w", err)
		}
		if d.Store, err = modelstore.Open(ctx, conn); err != nil {
			return nil, err
		}
	}
	if d.Bus == nil {
		d.Bus = conn
	}
	return New(cfg, d)
}

// Result is what one run did.
type Result struct {
	Trigger string
	// Seen counts ticket versions read from the change feed, Added the
	// examples added or replaced, Removed those dropped (a ticket reopened
	// or left without labels), Examples the examples kept afterwards.
	Seen, Added, Removed, Examples int
	// Skipped says why nothing was trained ("" when it was).
	Skipped string
	// Lineage is the challenger's, when one was trained.
	Lineage *Lineage
	// Action is "promoted", "kept" or "unchanged" when trained, and
	// Reason why (the gate's finding, or why a passing model was kept).
	Action, Reason string
}

// Run retrains every Interval and on each request (KeyRequest) until ctx
// ends, and checks a promotion's live precision every CheckEvery. The first
// run is at once when no model is promoted, a request is pending or the
// schedule is due; a failed run is retried with back-off while no model is
// promoted (a first `up` must end with one), else at the next interval.
func (t *Trainer) Run(ctx context.Context) error {
	reqs, err := t.d.KV.Watch(ctx, KeyRequest)
	if err != nil {
		return fmt.Errorf("watch training requests: %w", err)
	}
	st, err := ReadState(ctx, t.d.KV)
	if err != nil {
		return err
	}
	next := st.LastRun.Add(t.cfg.Interval)
	if _, err := t.d.Store.Promoted(ctx); errors.Is(err, modelstore.ErrNoModel) || st.LastRun.IsZero() {
		next = t.d.Now()
	}
	timer := time.NewTimer(max(0, next.Sub(t.d.Now())))
	defer timer.Stop()
	check := time.NewTicker(t.cfg.CheckEvery)
	defer check.Stop()
	if t.d.Evidence == nil {
		t.d.Log.Info("trainer: no live-precision evidence wired; promotions are not rolled back automatically")
	}
	retry := 10 * time.Second
	run := func(trigger string, force bool, reqRev uint64) {
		res, err := t.RunOnce(ctx, trigger, force, reqRev)
		if ctx.Err() != nil {
			return
		}
		wait := t.cfg.Interval
		if err != nil {
			t.m.runs.WithLabelValues("failed").Inc()
			t.d.Log.Error("training run failed", "trigger", trigger, "err", err)
			if _, perr := t.d.Store.Promoted(ctx); errors.Is(perr, modelstore.ErrNoModel) {
				wait, retry = retry, min(2*retry, time.Minute)
			}
		} else {
			retry = 10 * time.Second
			t.logResult(res)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-reqs:
			if !ok {
				return ctx.Err()
			}
			if e.Deleted {
				continue
			}
			cur, err := ReadState(ctx, t.d.KV)
			if err != nil {
				t.d.Log.Error("training request not handled", "err", err)
				continue
			}
			if e.Revision <= cur.RequestRev {
				continue // handled before a restart
			}
			run("request", true, e.Revision)
		case <-timer.C:
			run("schedule", false, 0)
		case <-check.C:
			if _, err := t.CheckRollback(ctx); err != nil && ctx.Err() == nil {
				t.d.Log.Error("live-precision check failed", "err", err)
			}
		}
	}
}

func (t *Trainer) logResult(r Result) {
	if r.Lineage == nil {
		t.m.runs.WithLabelValues("skipped").Inc()
		t.d.Log.Info("training run: nothing trained", "trigger", r.Trigger, "reason", r.Skipped, "read", r.Seen, "examples", r.Examples)
		return
	}
	t.m.runs.WithLabelValues(r.Action).Inc()
	t.d.Log.Info("training run", "trigger", r.Trigger, "action", r.Action, "model", r.Lineage.ModelID, "parent", r.Lineage.Parent,
		"tickets", r.Lineage.Tickets, "holdout", r.Lineage.HoldoutTickets, "gate", gateWord(r.Lineage.Gate.Pass), "reason", r.Lineage.Gate.Reason,
		"read", r.Seen, "added", r.Added)
}

// RunOnce reads the history since the cursor, and trains and gates a
// challenger when there is new data, force is set or no model is promoted.
// reqRev, when non-zero, is recorded as the request handled.
func (t *Trainer) RunOnce(ctx context.Context, trigger string, force bool, reqRev uint64) (Result, error) {
	res := Result{Trigger: trigger}
	st, err := ReadState(ctx, t.d.KV)
	if err != nil {
		return res, err
	}
	exs, err := t.update(ctx, &st, &res)
	if err != nil {
		return res, err
	}
	if reqRev > st.RequestRev {
		st.RequestRev = reqRev
	}
	champ, champErr := t.d.Store.Promoted(ctx)
	if champErr != nil && !errors.Is(champErr, modelstore.ErrNoModel) {
		return res, champErr
	}
	hasChamp := champErr == nil
	switch {
	case hasChamp && !force && res.Added+res.Removed == 0:
		res.Skipped = "no new resolved tickets since the last run"
	default:
		err = t.trainAndGate(ctx, exs, &st, hasChamp, champ, &res)
	}
	st.LastRun = t.d.Now().UTC()
	switch {
	case err != nil:
		st.LastResult = "failed: " + err.Error()
	case res.Lineage != nil:
		st.LastResult = res.Action + ": " + res.Reason
	default:
		st.LastResult = "skipped: " + res.Skipped
	}
	if werr := writeState(ctx, t.d.KV, &st); werr != nil {
		return res, errors.Join(err, werr)
	}
	return res, err
}

// update reads the change feed from the cursor into the kept examples and
// stores both: the examples first, then the cursor, so a crash in between
// only re-reads.
func (t *Trainer) update(ctx context.Context, st *State, res *Result) ([]classify.Example, error) {
	var exs []classify.Example
	limit := 2*t.cfg.MaxBytes + (64 << 20)
	if b, err := t.d.Store.Data(ctx, examplesData, limit); err == nil {
		if exs, err = decodeExamples(b, limit); err != nil {
			// Unreadable (or over its bound): start afresh from the
			// history rather than fail every run.
			t.m.runs.WithLabelValues("examples_reset").Inc()
			t.d.Log.Error("the kept examples are unreadable; re-reading the history", "err", err)
			exs, st.Through = nil, time.Time{}
		}
	} else if !errors.Is(err, pipeline.ErrNotFound) {
		return nil, err
	}
	cat, err := t.d.Helpdesk.Catalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the helpdesk catalog: %w", err)
	}
	groups, prios := training.LabelNames(cat)
	kept := make(map[string]int, len(exs))
	for i := range exs {
		kept[exs[i].ID] = i
	}
	since := st.Through
	if since.IsZero() {
		since = t.d.Now().Add(-t.cfg.History)
	}
	through := since
	removed := map[string]bool{}
	err = t.d.Helpdesk.ChangedSince(ctx, since, func(page []ticketsystem.Ticket) error {
		for i := range page {
			tk := &page[i]
			res.Seen++
			if tk.UpdatedAt.After(through) {
				through = tk.UpdatedAt
			}
			if tk.Unreadable != "" {
				continue
			}
			id := strconv.FormatInt(tk.ID, 10)
			ex, ok := training.ExampleOf(tk, groups, prios, t.d.IgnoreTag)
			j, had := kept[id]
			switch {
			case ok && had:
				// The same version again (the cursor's second) changes nothing.
				if ex.UpdatedAt.After(exs[j].UpdatedAt) || removed[id] {
					exs[j] = ex
					delete(removed, id)
					res.Added++
				}
			case ok:
				kept[id] = len(exs)
				exs = append(exs, ex)
				delete(removed, id)
				res.Added++
			case had && !removed[id]:
				// Reopened, or its labels cleared: what it had is no longer settled.
				removed[id] = true
				res.Removed++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the helpdesk history since %s: %w", since.Format(time.RFC3339), err)
	}
	if len(removed) > 0 {
		out := exs[:0]
		for _, ex := range exs {
			if !removed[ex.ID] {
				out = append(out, ex)
			}
		}
		exs = out
	}
	exs = bound(exs, t.cfg.MaxExamples, t.cfg.MaxBytes)
	if res.Added+res.Removed > 0 || st.Through.IsZero() {
		b, err := encodeExamples(exs)
		if err != nil {
			return nil, err
		}
		if err := t.d.Store.PutData(ctx, examplesData, b); err != nil {
			return nil, err
		}
	}
	st.Through = through.UTC()
	st.Examples = len(exs)
	res.Examples = len(exs)
	t.m.examples.Set(float64(len(exs)))
	return exs, nil
}

// split holds out the most recent Holdout of the examples (sorted oldest
// first), widened back to MinHoldout tickets when the window is quieter,
// and narrowed to the newest fifth when it would hold more than half.
func (t *Trainer) split(exs []classify.Example) (train, holdout []classify.Example, err error) {
	if len(exs) == 0 {
		return nil, nil, errors.New("no resolved tickets with labels to train on")
	}
	cutoff := exs[len(exs)-1].UpdatedAt.Add(-t.cfg.Holdout)
	i := sort.Search(len(exs), func(i int) bool { return !exs[i].UpdatedAt.Before(cutoff) })
	if len(exs)-i < t.cfg.MinHoldout {
		i = max(0, len(exs)-t.cfg.MinHoldout)
	}
	if i < len(exs)/2 {
		// A young helpdesk whose whole history fits the window: hold out
		// its most recent fifth (still by time), at least MinHoldout.
		i = max(0, len(exs)-max(t.cfg.MinHoldout, len(exs)/5))
	}
	if i < t.cfg.MinExamples {
		return nil, nil, fmt.Errorf("only %d labelled tickets before the held-out window of the last %s (%d tickets); at least %d are needed",
			i, t.cfg.Holdout, len(exs)-i, t.cfg.MinExamples)
	}
	return exs[:i], exs[i:], nil
}

// trainAndGate trains the challenger on the tickets before the held-out
// window and promotes that very artifact when it passes the gate.
//
// The gated challenger is promoted, not a refit on all data: the promoted
// bytes are the ones measured, and a champion that never saw the tickets
// after its own cutoff keeps the next run's comparison fair (both models
// judged on tickets neither trained on). The cost is that the newest
// Holdout of tickets reach the model one run later.
func (t *Trainer) trainAndGate(ctx context.Context, exs []classify.Example, st *State, hasChamp bool, champ modelstore.Promotion, res *Result) error {
	train, holdout, err := t.split(exs)
	if err != nil {
		return err
	}
	var champion *classify.Model
	var champLin *Lineage
	note := ""
	if hasChamp {
		b, info, err := t.d.Store.Load(ctx, champ.ID)
		if err != nil {
			return err
		}
		if champion, err = classify.Load(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("champion %s: %w", champ.ID, err)
		}
		if champLin, _, err = LoadLineage(ctx, t.d.Store, champ.ID); err != nil {
			return err
		}
		if champLin == nil {
			// Trained by `autotriage train`: its metadata may say how far
			// its data reached.
			if through, err := time.Parse(time.RFC3339, info.Meta["data_through"]); err == nil {
				champLin = &Lineage{ModelID: champ.ID, DataThrough: through}
			}
		}
		// Judge both only on held-out tickets the champion did not train on.
		if champLin != nil {
			k := sort.Search(len(holdout), func(i int) bool { return holdout[i].UpdatedAt.After(champLin.DataThrough) })
			if k > 0 {
				holdout = holdout[k:]
				note = fmt.Sprintf(" (%d held-out tickets the champion trained on left out)", k)
			}
			if len(holdout) < t.cfg.MinHoldout {
				res.Skipped = fmt.Sprintf("only %d tickets resolved since the champion's training window (through %s); at least %d are needed to judge a challenger",
					len(holdout), champLin.DataThrough.Format(time.RFC3339), t.cfg.MinHoldout)
				return nil
			}
		} else {
			note = " (the champion has no lineage and may have trained on held-out tickets, which favours it)"
		}
	}
	started := t.d.Now()
	opts := classify.TrainOptions{}
	if t.d.Train != nil {
		opts = *t.d.Train
	}
	opts.Seed = t.cfg.Seed
	m, err := classify.Train(ctx, train, opts)
	if err != nil {
		return fmt.Errorf("train the challenger: %w", err)
	}
	gate := Gate(m, champion, train, holdout, GateOptions{Seed: t.cfg.Seed, MinN: min(20, t.cfg.MinHoldout)})
	gate.Reason += note
	lin := &Lineage{
		ModelID: m.ID(), Version: modelstore.VersionFromTime(m.Created()), TrainedAt: m.Created().UTC(),
		DataFrom: train[0].UpdatedAt.UTC(), DataThrough: train[len(train)-1].UpdatedAt.UTC(), Tickets: len(train),
		HoldoutFrom: holdout[0].UpdatedAt.UTC(), HoldoutThrough: holdout[len(holdout)-1].UpdatedAt.UTC(), HoldoutTickets: len(holdout),
		Holdout: classify.Evaluate(m, holdout).Fields, LabelCounts: m.Metadata().Training.LabelCounts,
		Gate: gate, Trigger: res.Trigger,
	}
	if hasChamp {
		lin.Parent, lin.ParentVersion = champ.ID, champ.Version
	}
	res.Lineage = lin
	if hasChamp && m.ID() == champ.ID {
		res.Action, res.Reason = "unchanged", "the challenger is the champion (same data, same model)"
		lin.Outcome = "unchanged"
		return nil
	}
	if slices.Contains(st.Retired, m.ID()) {
		// Its lineage keeps the rollback; the champion stays.
		res.Action = "kept"
		res.Reason = "this model was rolled back for its live precision before; not promoted again"
		lin.Outcome = "kept"
		return t.publish(ctx, res.Action, m.ID(), lin.Version, lin.Parent, lin.ParentVersion, res.Reason)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		return fmt.Errorf("save the challenger: %w", err)
	}
	meta := lin.meta()
	meta["examples"] = strconv.Itoa(len(train))
	meta["fields"] = strings.Join(m.FieldNames(), ",")
	meta["trained_at"] = lin.TrainedAt.Format(time.RFC3339)
	if _, err := t.d.Store.Put(ctx, m.ID(), lin.Version, buf.Bytes(), meta); err != nil {
		return err
	}
	res.Reason = gate.Reason
	if gate.Pass {
		if _, err := t.d.Store.Promote(ctx, m.ID(), promotedBy); err != nil {
			return err
		}
		lin.Outcome, res.Action = "promoted", "promoted"
	} else {
		lin.Outcome, res.Action = "kept", "kept"
	}
	if err := SaveLineage(ctx, t.d.Store, lin); err != nil {
		return err
	}
	t.d.Log.Info("challenger trained", "model", m.ID(), "tickets", len(train), "took", t.d.Now().Sub(started).Round(time.Millisecond))
	return t.publish(ctx, res.Action, m.ID(), lin.Version, lin.Parent, lin.ParentVersion, res.Reason)
}

// publish records a model change in OUTCOMES (ticket id 0: it concerns no
// ticket).
func (t *Trainer) publish(ctx context.Context, action, id, version, prevID, prevVersion, reason string) error {
	now := t.d.Now().UTC()
	o := &v1.Outcome{
		System: t.d.System, Account: t.d.Account, Kind: v1.OutcomeKind_OUTCOME_KIND_MODEL_CHANGE,
		ModelId: id, ModelVersion: version, At: timestamppb.New(now),
		ModelChange: &v1.ModelChange{Action: action, ModelId: id, ModelVersion: version,
			PreviousId: prevID, PreviousVersion: prevVersion, Reason: reason, By: "trainer"},
	}
	data, err := proto.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode model change: %w", err)
	}
	_, err = t.d.Bus.Publish(ctx, pipeline.OutMsg{
		Subject: pipeline.OutcomeSubject(t.d.System, t.d.Account, 0),
		ID:      "model-change:" + action + ":" + id + ":" + now.Format(time.RFC3339Nano),
		Data:    data,
		Header:  map[string]string{pipeline.HeaderContentType: pipeline.ContentTypeProtobuf},
	})
	if err != nil {
		return fmt.Errorf("publish model change %s of %s: %w", action, id, err)
	}
	return nil
}
