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
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
)

func main() { platform.Main(run) }

// freshdeskConfig is how the fetcher reaches Freshdesk.
type freshdeskConfig struct {
	Domain  string          `env:"FRESHDESK_DOMAIN" help:"account subdomain: acme for acme.freshdesk.com (required unless FRESHDESK_BASE_URL is set)"`
	APIKey  platform.Secret `env:"FRESHDESK_API_KEY,required" secret:"true" help:"API key of the agent autotriage acts as"`
	BaseURL string          `env:"FRESHDESK_BASE_URL" help:"API origin override, e.g. the simulator's http://freshdesk-sim:8081"`
	// The same variables as the writer's, so one .env serves both.
	Reserve    float64       `env:"AUTOTRIAGE_FRESHDESK_RESERVE" envDefault:"0.2" help:"per-minute API budget left to other integrations: a fraction (<1) of X-RateLimit-Total or a number of credits"`
	Timeout    time.Duration `env:"AUTOTRIAGE_FRESHDESK_TIMEOUT" envDefault:"30s" help:"timeout of one Freshdesk HTTP attempt"`
	MaxRetries int           `env:"AUTOTRIAGE_FRESHDESK_MAX_RETRIES" envDefault:"4" help:"retries of a failed Freshdesk call (-1: none); a poll that still fails resumes from the cursor"`
}

type config struct {
	platform.Common
	NATS      pipeline.Config
	Fetcher   fetcher.Config
	Freshdesk freshdeskConfig
}

// Validate checks every part and names the variable at fault.
func (c config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if err := c.NATS.Topology.Validate(); err != nil {
		return err
	}
	switch f := c.Freshdesk; {
	case strings.TrimSpace(f.Domain) == "" && strings.TrimSpace(f.BaseURL) == "":
		return &platform.ConfigError{Var: "FRESHDESK_DOMAIN", Msg: "required unless FRESHDESK_BASE_URL is set"}
	case f.Reserve < 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_FRESHDESK_RESERVE", Msg: "must not be negative"}
	case f.Timeout <= 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_FRESHDESK_TIMEOUT", Msg: "must be positive"}
	}
	return c.Fetcher.Validate()
}

// account is the name of the Freshdesk account in subjects and keys:
// AUTOTRIAGE_ACCOUNT, else the subdomain, else "default".
func (c config) account() string {
	if c.Fetcher.Account != "" {
		return c.Fetcher.Account
	}
	if d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.Freshdesk.Domain)), ".freshdesk.com"); d != "" {
		return d
	}
	return "default"
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

	client, err := freshdesk.New(freshdesk.Config{
		Domain:     cfg.Freshdesk.Domain,
		APIKey:     freshdesk.Secret(cfg.Freshdesk.APIKey.Reveal()),
		BaseURL:    cfg.Freshdesk.BaseURL,
		Reserve:    cfg.Freshdesk.Reserve,
		Timeout:    cfg.Freshdesk.Timeout,
		MaxRetries: cfg.Freshdesk.MaxRetries,
		Registerer: rt.Registry,
		Logger:     rt.Log,
	})
	if err != nil {
		return &platform.ConfigError{Var: "FRESHDESK_DOMAIN/FRESHDESK_BASE_URL", Msg: err.Error()}
	}
	adapter := freshdesk.NewAdapter(client)
	state, err := rt.Conn.KV(ctx, pipeline.BucketFetcher)
	if err != nil {
		return err
	}
	writerKV, err := rt.Conn.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		return err
	}
	f, err := fetcher.New(cfg.Fetcher, fetcher.Deps{
		System: "freshdesk", Account: cfg.account(),
		Source: adapter, Catalog: adapter,
		Bus: rt.Conn, State: state, Ledger: ledger.New(writerKV),
		Log: rt.Log, Registerer: rt.Registry,
	})
	if err != nil {
		return err
	}
	if !cfg.Fetcher.WebhooksOff {
		web, err := platform.Listen("webhook", cfg.Fetcher.WebhookAddr, f.WebhookHandler(), rt.Log)
		if err != nil {
			return err
		}
		// Stop taking webhooks first, letting in-flight ones finish their
		// publish, before the NATS connection drains.
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
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
