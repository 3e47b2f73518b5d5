package targets

import (
	"context"
	"fmt"

	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/modelstore"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/trainer"
	"github.com/autotriage/autotriage/services/internal/triage"
	"github.com/autotriage/autotriage/services/internal/writer"
)

var fetcherTarget = &Target{
	Name:     "fetcher",
	Role:     pipeline.RoleFetcher,
	Helpdesk: true,
	Parts:    func(c *Config) []any { return []any{&c.Fetcher, &c.Freshdesk} },
	Validate: func(c *Config) error { return c.Fetcher.Validate() },
	Start: func(ctx context.Context, rt *service.Runtime, cfg *Config, h Hooks) (*Unit, error) {
		f, err := fetcher.Build(ctx, rt, cfg.Fetcher, cfg.Freshdesk)
		if err != nil {
			return nil, err
		}
		// The fetcher consumes nothing, yet exports the stream gauges
		// (TICKETS it feeds, the DLQ) like every stage.
		rt.WatchStreams(ctx)
		u := &Unit{Run: f.Run}
		switch {
		case cfg.Fetcher.WebhooksOff:
			rt.Log.Info("webhooks disabled; polling only")
		case h.Webhooks != nil:
			h.Webhooks(f.WebhookHandler())
		default:
			web, err := platform.Listen("webhook", cfg.Fetcher.WebhookAddr, f.WebhookHandler(), rt.Log)
			if err != nil {
				return nil, err
			}
			// Stop taking webhooks first, letting in-flight ones finish
			// their publish until the shutdown's work deadline, before the
			// NATS connection drains in what is left of the same budget.
			u.Stop = func() error {
				sctx, cancel := rt.Shutdown.WorkContext()
				defer cancel()
				if err := web.Shutdown(sctx); err != nil {
					return fmt.Errorf("webhook server: %w", err)
				}
				return nil
			}
		}
		rt.Log.Info("fetcher running", "account", cfg.Account(), "holder", f.HolderID(),
			"poll_interval", cfg.Fetcher.PollInterval, "webhooks", !cfg.Fetcher.WebhooksOff)
		return u, nil
	},
}

var classifierTarget = &Target{
	Name:     "classifier",
	Role:     pipeline.RoleClassifier,
	Parts:    func(c *Config) []any { return []any{&c.Classifier, &c.Triage} },
	Validate: func(c *Config) error { return c.Triage.Validate() },
	Start: func(ctx context.Context, rt *service.Runtime, cfg *Config, _ Hooks) (*Unit, error) {
		policy, err := triage.ParsePolicy(cfg.Triage.Policy)
		if err != nil {
			return nil, &platform.ConfigError{Var: "AUTOTRIAGE_POLICY", Msg: err.Error()}
		}
		stage, err := classifier.Build(ctx, rt, cfg.Classifier, policy)
		if err != nil {
			return nil, err
		}
		rt.WatchConsumer(ctx, "classifier", pipeline.StreamTickets, pipeline.ConsumerClassifier)
		rt.Log.Info("classifier running", "policy", policy.String(), "concurrency", cfg.Classifier.Concurrency)
		return &Unit{Run: func(ctx context.Context) error { return stage.Run(ctx, rt.Conn) }}, nil
	},
}

var writerTarget = &Target{
	Name:     "writer",
	Role:     pipeline.RoleWriter,
	Helpdesk: true,
	Parts:    func(c *Config) []any { return []any{&c.Writer, &c.Freshdesk} },
	Validate: func(c *Config) error { return c.Writer.Validate() },
	Start: func(ctx context.Context, rt *service.Runtime, cfg *Config, _ Hooks) (*Unit, error) {
		stage, err := writer.Build(ctx, rt, cfg.Writer, cfg.Freshdesk)
		if err != nil {
			return nil, err
		}
		rt.WatchConsumer(ctx, "writer", pipeline.StreamPredictions, pipeline.ConsumerWriter)
		return &Unit{Run: func(ctx context.Context) error { return stage.Run(ctx, rt.Conn) }}, nil
	},
}

// trainerTarget is the continuous trainer with live precision. It runs as
// the admin broker role: it stores and promotes models and publishes to
// OUTCOMES.
var trainerTarget = &Target{
	Name:     "trainer",
	Role:     pipeline.RoleAdmin,
	Helpdesk: true,
	Parts:    func(c *Config) []any { return []any{&c.Freshdesk, &c.Trainer, &c.Live, &c.Triage, &c.TrainerTag} },
	Validate: func(c *Config) error {
		return platform.FirstError(c.Trainer.Validate(), c.Live.Validate(), c.Triage.Validate())
	},
	Start: func(ctx context.Context, rt *service.Runtime, cfg *Config, h Hooks) (u *Unit, err error) {
		client, err := cfg.Freshdesk.NewClient(rt.Registerer, rt.Log, nil)
		if err != nil {
			return nil, err
		}
		if err := rt.Conn.EnsureModelStore(ctx); err != nil {
			return nil, fmt.Errorf("create the model registry: %w", err)
		}
		models, err := modelstore.Open(ctx, rt.Conn)
		if err != nil {
			return nil, err
		}
		// Live precision (from agents' verdicts in OUTCOMES) runs from the
		// start: it demotes and promotes classes in the policy, is the
		// rollback's evidence, and creates the policy document before the
		// classifier reads it.
		liveCtx, stopLive := context.WithCancel(ctx)
		live, err := trainer.StartLive(liveCtx, rt.Conn, models, cfg.Live, cfg.Triage.Policy, rt.Registerer, rt.Log)
		if err != nil {
			stopLive()
			return nil, err
		}
		stop := func() error { stopLive(); live.Wait(); return nil }
		defer func() {
			if err != nil {
				_ = stop()
			}
		}()
		tr, err := trainer.Open(ctx, rt.Conn, cfg.Trainer, trainer.Deps{
			Store: models, Evidence: live.Tracker, Helpdesk: freshdesk.NewAdapter(client), Account: cfg.Freshdesk.AccountName(),
			IgnoreTag: cfg.TrainerTag.Tag, Log: rt.Log, Registerer: rt.Registerer,
		})
		if err != nil {
			return nil, err
		}
		continuous := true
		if h.Starter != nil {
			if continuous, err = h.Starter(ctx, rt, tr, models, live); err != nil {
				return nil, err
			}
		}
		u = &Unit{Stop: stop}
		if continuous {
			rt.Log.Info("trainer running", "interval", cfg.Trainer.Interval, "holdout", cfg.Trainer.Holdout, "rollback", live.Tracker != nil)
			u.Run = tr.Run
		}
		return u, nil
	},
}
