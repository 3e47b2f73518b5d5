// Command fetcher is the fetcher stage: it polls Freshdesk's change feed
// (one replica per account, elected by a lease in KV), serves Freshdesk
// automation-rule webhooks on every replica, and publishes ticket versions
// to TICKETS. Configuration comes from the environment; run with --help for
// the reference. main is wiring only; the stage is internal/fetcher.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
)

func main() { platform.Main(run) }

type config struct {
	platform.Common
	NATS      pipeline.Config
	Fetcher   fetcher.Config
	Freshdesk freshdesk.Settings
}

// Validate checks every part and names the variable at fault.
func (c config) Validate() error {
	return platform.FirstError(c.Common.Validate(), c.NATS.Topology.Validate(), c.Freshdesk.Validate(), c.Fetcher.Validate())
}

// account is the name of the Freshdesk account in subjects and keys.
func (c config) account() string {
	if c.Fetcher.Account != "" {
		return c.Fetcher.Account
	}
	return c.Freshdesk.AccountName()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg config
	if err := platform.LoadConfig(&cfg, args, "fetcher", "reads Freshdesk tickets (poll and webhooks) into the autotriage pipeline", stdout); err != nil {
		return err
	}
	rt, err := service.Start(ctx, "fetcher", cfg.Common, cfg.NATS, stderr, service.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Stop()) }()

	f, err := fetcher.Build(ctx, rt, cfg.Fetcher, cfg.Freshdesk)
	if err != nil {
		return err
	}
	// The fetcher consumes nothing, yet exports the stream gauges (TICKETS
	// it feeds, the DLQ) like every stage.
	rt.WatchStreams(ctx)
	if !cfg.Fetcher.WebhooksOff {
		web, err := platform.Listen("webhook", cfg.Fetcher.WebhookAddr, f.WebhookHandler(), rt.Log)
		if err != nil {
			return err
		}
		// Stop taking webhooks first, letting in-flight ones finish their
		// publish until the shutdown's work deadline, before the NATS
		// connection drains (rt.Stop) in what is left of the same budget.
		defer func() {
			sctx, cancel := rt.Shutdown.WorkContext()
			defer cancel()
			if serr := web.Shutdown(sctx); serr != nil {
				err = errors.Join(err, fmt.Errorf("webhook server: %w", serr))
			}
		}()
	} else {
		rt.Log.Info("webhooks disabled; polling only")
	}
	rt.Log.Info("fetcher running", "account", cfg.account(), "holder", f.HolderID(),
		"poll_interval", cfg.Fetcher.PollInterval, "webhooks", !cfg.Fetcher.WebhooksOff)
	return f.Run(ctx)
}
