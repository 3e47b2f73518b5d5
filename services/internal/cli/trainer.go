package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/trainer"
	"github.com/autotriage/autotriage/services/internal/triage"
)

func init() {
	Register("trainer", "run the continuous trainer (retrains on a schedule and on request, gated, with rollback)", runTrainer)
}

// trainerConfig is the long-running trainer's environment. It runs as the
// admin broker role (NATS_NKEY_FILE of the admin): it stores and promotes
// models and publishes to OUTCOMES.
type trainerConfig struct {
	platform.Common
	NATS      pipeline.Config
	Freshdesk freshdesk.Settings
	Trainer   trainer.Config
	Live      trainer.LiveConfig
	Triage    triage.Config
	Tag       string `env:"AUTOTRIAGE_TAG" envDefault:"autotriage" help:"autotriage's own tag, never learnt as a label"`
}

func (c trainerConfig) Validate() error {
	return platform.FirstError(c.Common.Validate(), c.NATS.Topology.Validate(), c.Freshdesk.Validate(), c.Trainer.Validate(),
		c.Live.Validate(), c.Triage.Validate())
}

func runTrainer(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg trainerConfig
	if err := platform.LoadConfig(&cfg, args, "autotriage trainer",
		"the continuous trainer: reads the helpdesk's newly resolved tickets (cursor in KV), retrains every AUTOTRIAGE_TRAINER_INTERVAL "+
			"and on `autotriage train --request`, promotes a challenger only when it is no worse than the champion beyond noise on the "+
			"most recent AUTOTRIAGE_TRAINER_HOLDOUT of tickets, and rolls a promotion back when its live precision drops", stdout); err != nil {
		return err
	}
	rt, err := service.Start(ctx, "trainer", cfg.Common, cfg.NATS, stderr, service.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Stop()) }()
	client, err := cfg.Freshdesk.NewClient(rt.Registerer, rt.Log, nil)
	if err != nil {
		return err
	}
	d := trainer.Deps{Helpdesk: freshdesk.NewAdapter(client), Account: cfg.Freshdesk.AccountName(), IgnoreTag: cfg.Tag,
		Log: rt.Log, Registerer: rt.Registerer}
	if err := rt.Conn.EnsureModelStore(ctx); err != nil {
		return fmt.Errorf("create the model registry: %w", err)
	}
	models, err := modelstore.Open(ctx, rt.Conn)
	if err != nil {
		return err
	}
	// Live precision (from agents' verdicts in OUTCOMES) demotes and
	// promotes classes in the policy and is the rollback's evidence.
	liveCtx, stopLive := context.WithCancel(ctx)
	live, err := trainer.StartLive(liveCtx, rt.Conn, models, cfg.Live, cfg.Triage.Policy, rt.Registerer, rt.Log)
	if err != nil {
		stopLive()
		return err
	}
	defer func() { stopLive(); live.Wait() }()
	d.Store, d.Evidence = models, live.Tracker
	tr, err := trainer.Open(ctx, rt.Conn, cfg.Trainer, d)
	if err != nil {
		return err
	}
	rt.Log.Info("trainer running", "interval", cfg.Trainer.Interval, "holdout", cfg.Trainer.Holdout, "rollback", d.Evidence != nil)
	return tr.Run(ctx)
}
