package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
	"github.com/autotriage/autotriage/services/internal/trainer"
	"github.com/autotriage/autotriage/services/internal/training"
)

func init() {
	Register("train", "train a model from a JSONL file or the helpdesk's resolved history", runTrain)
}

type trainOpts struct {
	data, out, since string
	fromHelpdesk     bool
	promote, force   bool
	request          bool
	seed             uint64
	folds            int
	wait             time.Duration
	tag              string
	asJSON           bool
	minExamples      int
	conn             connOpts
}

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "train"
	f := newFlags(cmd, "(--data FILE.jsonl | --from-helpdesk [--since DATE]) [--out MODEL] [--promote] [flags] | --request",
		"Train a model: TF-IDF features, linear SVMs with cross-validated cost, calibrated probabilities.\n"+
			"With --promote the artifact is stored in the registry and promoted; if a model is already\n"+
			"promoted, nothing is trained unless --force. With --request, asks the running continuous trainer\n"+
			"(`autotriage trainer`) for a run now: it retrains on the history read so far plus what is new, and\n"+
			"promotes the challenger only if it passes the gate.", stdout)
	var o trainOpts
	o.conn.register(f)
	f.StringVar(&o.data, "data", "", "labelled JSONL file (id, subject, body, group, priority, type, tags)")
	f.BoolVar(&o.fromHelpdesk, "from-helpdesk", false, "train on the helpdesk's resolved and closed tickets (FRESHDESK_* settings)")
	f.StringVar(&o.since, "since", "365d", "with --from-helpdesk: tickets updated since this time (RFC 3339, YYYY-MM-DD or a duration ago)")
	f.StringVar(&o.out, "out", "", "write the model artifact to this file")
	f.BoolVar(&o.promote, "promote", false, "store the model in the registry and promote it")
	f.BoolVar(&o.force, "force", false, "with --promote: train even when a model is already promoted")
	f.Uint64Var(&o.seed, "seed", 1, "random seed; same data, options and seed give the same model")
	f.IntVar(&o.folds, "folds", 3, "cross-validation folds (1 disables held-out metrics and calibration)")
	f.DurationVar(&o.wait, "wait", 2*time.Minute, "with --promote or --from-helpdesk: how long to wait for NATS and the helpdesk to become reachable")
	f.StringVar(&o.tag, "ignore-tag", "autotriage", "tag that autotriage itself adds; left out of the training labels")
	f.IntVar(&o.minExamples, "min-examples", 20, "refuse to train on fewer labelled tickets")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
	f.BoolVar(&o.request, "request", false, "ask the running trainer (autotriage trainer) for a training run now, then return")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	if o.request {
		if o.data != "" || o.fromHelpdesk || o.out != "" || o.promote {
			return usagef(cmd, "train: --request takes no --data, --from-helpdesk, --out or --promote")
		}
		return trainRequest(ctx, &o.conn, o.asJSON, stdout)
	}
	switch {
	case (o.data == "") == !o.fromHelpdesk:
		return usagef(cmd, "train: give exactly one of --data FILE or --from-helpdesk")
	case o.out == "" && !o.promote:
		return usagef(cmd, "train: give --out FILE, --promote or both")
	case o.force && !o.promote:
		return usagef(cmd, "train: --force only makes sense with --promote")
	case o.folds < 1 || o.folds > 20:
		return usagef(cmd, "train: --folds must be between 1 and 20")
	}
	var since time.Time
	if o.fromHelpdesk {
		if since, err = parseTime(o.since, time.Now()); err != nil {
			return usagef(cmd, "train: --since: %v", err)
		}
	}

	var st *modelstore.Store
	if o.promote {
		// Bounded wait for NATS: the one-shot trainer may start with it.
		if o.conn.wait == 0 {
			o.conn.wait = o.wait
		}
		conn, err := o.conn.connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if st, err = openStore(ctx, conn, true); err != nil {
			return err
		}
		cur, err := st.Promoted(ctx)
		switch {
		case err == nil && !o.force:
			if o.asJSON {
				return writeJSON(stdout, map[string]any{"skipped": true, "promoted": cur})
			}
			fmt.Fprintf(stdout, "model %s (version %s) is already promoted; not retraining (use --force to train anyway)\n", shortID(cur.ID), cur.Version)
			return nil
		case err != nil && !errors.Is(err, modelstore.ErrNoModel):
			return err
		}
	}

	var examples []classify.Example
	source := o.data
	if o.fromHelpdesk {
		examples, err = helpdeskExamples(ctx, since, o, stderr)
		source = "helpdesk since " + since.Format("2006-01-02")
	} else {
		examples, err = classify.LoadJSONL(o.data)
	}
	if err != nil {
		return err
	}
	if len(examples) < o.minExamples {
		return fmt.Errorf("only %d labelled tickets in %s; at least %d are needed (--min-examples)", len(examples), source, o.minExamples)
	}

	prog := newProgress(stderr)
	start := time.Now()
	m, err := classify.Train(ctx, examples, classify.TrainOptions{
		Seed:  o.seed,
		Folds: o.folds,
		Progress: func(p classify.Progress) {
			pct := 0.0
			if p.Total > 0 {
				pct = 100 * float64(p.Done) / float64(p.Total)
			}
			prog.update("training: %s %s %d/%d (%.0f%%), %s elapsed", p.Stage, p.Field, p.Done, p.Total, pct, time.Since(start).Round(time.Second))
		},
	})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	prog.done("trained on %d tickets in %s", len(examples), time.Since(start).Round(time.Millisecond))

	sum := trainSummary{ModelID: m.ID(), Examples: len(examples), Source: source, Seed: o.seed}
	if o.out != "" {
		if err := writeModelFile(o.out, m); err != nil {
			return err
		}
		sum.Out = o.out
	}
	if st != nil {
		meta := map[string]string{"source": source, "seed": strconv.FormatUint(o.seed, 10)}
		// The continuous trainer judges a challenger against this model
		// only on tickets resolved after it (trainer.Lineage.DataThrough).
		var through time.Time
		for i := range examples {
			if examples[i].UpdatedAt.After(through) {
				through = examples[i].UpdatedAt
			}
		}
		if !through.IsZero() {
			meta["data_through"] = through.UTC().Format(time.RFC3339)
		}
		info, p, err := pushModel(ctx, st, m, meta, true, "autotriage train")
		if err != nil {
			return err
		}
		sum.Version = info.Version
		sum.Promoted = p != nil
	}
	for _, name := range m.FieldNames() {
		fs := fieldSummary{Field: name}
		if h := m.HeldOut(name); h != nil {
			fs.HeldOut = true
			fs.N, fs.Accuracy, fs.MacroF1, fs.ECE = h.N, h.Accuracy, h.MacroF1, h.ECE
			fs.Coverage95 = h.CoverageAtPrecision(0.95)
		}
		sum.Fields = append(sum.Fields, fs)
	}
	if o.asJSON {
		return writeJSON(stdout, sum)
	}
	return sum.print(stdout)
}

type fieldSummary struct {
	Field      string  `json:"field"`
	HeldOut    bool    `json:"held_out"`
	N          int     `json:"n,omitempty"`
	Accuracy   float64 `json:"accuracy,omitempty"`
	MacroF1    float64 `json:"macro_f1,omitempty"`
	ECE        float64 `json:"ece,omitempty"`
	Coverage95 float64 `json:"coverage_at_95,omitempty"`
}

type trainSummary struct {
	ModelID  string         `json:"model_id"`
	Version  string         `json:"version,omitempty"`
	Promoted bool           `json:"promoted"`
	Out      string         `json:"out,omitempty"`
	Source   string         `json:"source"`
	Examples int            `json:"examples"`
	Seed     uint64         `json:"seed"`
	Fields   []fieldSummary `json:"fields"`
}

func (s trainSummary) print(w io.Writer) error {
	fmt.Fprintf(w, "model %s trained on %d tickets from %s\n", shortID(s.ModelID), s.Examples, s.Source)
	if s.Out != "" {
		fmt.Fprintf(w, "written to %s\n", s.Out)
	}
	if s.Promoted {
		fmt.Fprintf(w, "stored and promoted as version %s\n", s.Version)
	}
	fmt.Fprintln(w, "held-out (cross-validation) quality:")
	for _, f := range s.Fields {
		if !f.HeldOut {
			fmt.Fprintf(w, "  %-9s no held-out figures (too few examples or --folds 1)\n", f.Field)
			continue
		}
		fmt.Fprintf(w, "  %-9s n=%-6d accuracy %.3f  macro-F1 %.3f  ECE %.3f  coverage at 95%% precision %.1f%%\n",
			f.Field, f.N, f.Accuracy, f.MacroF1, f.ECE, 100*f.Coverage95)
	}
	return nil
}

// writeModelFile writes the artifact atomically: a reader never sees half a
// model.
func writeModelFile(path string, m *classify.Model) error {
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".model-*")
	if err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write model: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	return nil
}

// helpdeskExamples reads resolved and closed tickets from the change feed
// and turns those with at least one label into examples. Group ids and
// priority codes become the names the writer maps back (catalog).
func helpdeskExamples(ctx context.Context, since time.Time, o trainOpts, stderr io.Writer) ([]classify.Example, error) {
	client, _, ok, err := helpdeskClient()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("--from-helpdesk needs FRESHDESK_DOMAIN or FRESHDESK_BASE_URL, and FRESHDESK_API_KEY")
	}
	if err := waitHelpdesk(ctx, client, o.wait, stderr); err != nil {
		return nil, err
	}
	ad := freshdesk.NewAdapter(client)
	cat, err := ad.Catalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the helpdesk catalog: %w", err)
	}
	return collectExamples(ctx, ad, cat, since, o.tag, func() freshdesk.RateLimit { return client.RateLimit() }, stderr)
}

// waitHelpdesk calls GET /agents/me until it answers or wait passes. An
// authentication or permission error is final.
func waitHelpdesk(ctx context.Context, c *freshdesk.Client, wait time.Duration, stderr io.Writer) error {
	deadline := time.Now().Add(wait)
	said := false
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.Me(actx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ticketsystem.ErrAuth) || errors.Is(err, ticketsystem.ErrPermission) || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("helpdesk at %s: %w", c.BaseURL(), err)
		}
		if !said {
			fmt.Fprintf(stderr, "waiting up to %s for the helpdesk at %s: %v\n", wait, c.BaseURL(), err)
			said = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func collectExamples(ctx context.Context, feed ticketsystem.ChangeFeed, cat *ticketsystem.Catalog, since time.Time, ignoreTag string,
	rate func() freshdesk.RateLimit, stderr io.Writer) ([]classify.Example, error) {
	prog := newProgress(stderr)
	start := time.Now()
	var last training.Progress
	out, err := training.FromHelpdesk(ctx, feed, cat, training.Options{Since: since, IgnoreTag: ignoreTag, Progress: func(p training.Progress) {
		last = p
		rl := rate()
		budget := "rate limit unknown"
		if rl.Known {
			budget = fmt.Sprintf("API budget %d/%d left (reserve %d)", rl.Remaining, rl.Total, rl.Reserve)
		}
		prog.update("helpdesk: %d pages, %d tickets read, %d labelled, through %s, %s, ETA %s",
			p.Pages, p.Seen, p.Labelled, p.Through.Format("2006-01-02"), budget, eta(time.Since(start), p.Fraction))
	}})
	if err != nil {
		return nil, err
	}
	prog.done("helpdesk: %d pages, %d tickets read, %d resolved or closed with labels, in %s",
		last.Pages, last.Seen, len(out), time.Since(start).Round(time.Millisecond))
	if last.Unreadable > 0 {
		fmt.Fprintf(stderr, "helpdesk: %d ticket versions too large to read within the response limit were left out\n", last.Unreadable)
	}
	return out, nil
}

// trainRequest asks the running trainer for a run (KV key
// trainer.KeyRequest in the policy bucket, which it watches).
func trainRequest(ctx context.Context, co *connOpts, asJSON bool, stdout io.Writer) error {
	conn, err := co.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if ok, err := conn.HasTopology(ctx); err != nil {
		return err
	} else if !ok {
		return errNoTopology
	}
	rev, err := trainer.RequestRun(ctx, conn, "autotriage train --request")
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, map[string]any{"requested": true, "revision": rev})
	}
	_, err = fmt.Fprintf(stdout, "training run requested (revision %d); the trainer starts it within seconds: see its log, `autotriage models list` and `autotriage models history`\n", rev)
	return err
}
