package cli

import (
	"context"
	"errors"
	"io"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/trainer"
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
	Tag       string `env:"AUTOTRIAGE_TAG" envDefault:"autotriage" help:"autotriage's own tag, never learnt as a label"`
}

func (c trainerConfig) Validate() error {
	return platform.FirstError(c.Common.Validate(), c.NATS.Topology.Validate(), c.Freshdesk.Validate(), c.Trainer.Validate())
}

// TrainerEvidence, when set, supplies the live precision that lets the
// trainer roll a promotion back by itself (the quality tracker's); without
// it promotions are only gated.
var TrainerEvidence func(ctx context.Context, rt *service.Runtime) (trainer.Evidence, error)

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
	if TrainerEvidence != nil {
		if d.Evidence, err = TrainerEvidence(ctx, rt); err != nil {
			return err
		}
	}
	tr, err := trainer.Open(ctx, rt.Conn, cfg.Trainer, d)
	if err != nil {
		return err
	}
	rt.Log.Info("trainer running", "interval", cfg.Trainer.Interval, "holdout", cfg.Trainer.Holdout, "rollback", d.Evidence != nil)
	return tr.Run(ctx)
}
