// Command writer is the writer stage: it applies predictions to Freshdesk
// and publishes an outcome for each. See README.md for its settings.
package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/writer"
)

type config struct {
	platform.Common
	NATS      pipeline.Config
	Writer    writer.Config
	Freshdesk freshdeskConfig
}

type freshdeskConfig struct {
	Domain     string          `env:"FRESHDESK_DOMAIN" help:"Freshdesk subdomain (acme for acme.freshdesk.com); required unless FRESHDESK_BASE_URL is set"`
	APIKey     platform.Secret `env:"FRESHDESK_API_KEY,required" secret:"true" help:"API key of the agent autotriage writes as (an admin, to read groups)"`
	BaseURL    string          `env:"FRESHDESK_BASE_URL" help:"API origin overriding https://<domain>.freshdesk.com, e.g. the simulator"`
	Reserve    float64         `env:"AUTOTRIAGE_FRESHDESK_RESERVE" envDefault:"0.2" help:"per-minute API budget left to other integrations: a fraction (<1) of X-RateLimit-Total or a number of credits"`
	Timeout    time.Duration   `env:"AUTOTRIAGE_FRESHDESK_TIMEOUT" envDefault:"30s" help:"timeout of one Freshdesk HTTP attempt"`
	MaxRetries int             `env:"AUTOTRIAGE_FRESHDESK_MAX_RETRIES" envDefault:"4" help:"retries of a failed Freshdesk call before the prediction is redelivered later (-1: none)"`
}

func (c config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if err := c.NATS.Topology.Validate(); err != nil {
		return err
	}
	if err := c.Writer.Validate(); err != nil {
		return err
	}
	f := c.Freshdesk
	switch {
	case strings.TrimSpace(f.Domain) == "" && strings.TrimSpace(f.BaseURL) == "":
		return &platform.ConfigError{Var: "FRESHDESK_DOMAIN", Msg: "required unless FRESHDESK_BASE_URL is set"}
	case !f.APIKey.IsSet():
		return &platform.ConfigError{Var: "FRESHDESK_API_KEY", Msg: "must not be empty"}
	case f.Reserve < 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_FRESHDESK_RESERVE", Msg: "must not be negative"}
	case f.Timeout <= 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_FRESHDESK_TIMEOUT", Msg: "must be positive"}
	}
	return nil
}

func main() { platform.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config
	if err := platform.LoadConfig(&cfg, args, "writer", "applies predictions to Freshdesk and publishes outcomes", stdout); err != nil {
		return err
	}
	rt, err := service.Start(ctx, "writer", cfg.Common, cfg.NATS, stderr, service.Options{})
	if err != nil {
		return err
	}
	stage, err := build(ctx, cfg, rt)
	if err != nil {
		return errors.Join(err, rt.Stop())
	}
	rt.WatchConsumer(ctx, "writer", pipeline.StreamPredictions, pipeline.ConsumerWriter)
	runErr := stage.Run(ctx, rt.Conn)
	return errors.Join(runErr, rt.Stop())
}

func build(ctx context.Context, cfg config, rt *service.Runtime) (*writer.Stage, error) {
	f := cfg.Freshdesk
	client, err := freshdesk.New(freshdesk.Config{
		Domain:     f.Domain,
		APIKey:     freshdesk.Secret(f.APIKey.Reveal()),
		BaseURL:    f.BaseURL,
		MaxRetries: f.MaxRetries,
		Reserve:    f.Reserve,
		// The metering transport attributes credits to each prediction.
		HTTPClient: &http.Client{Timeout: f.Timeout, Transport: writer.MeterCredits(nil)},
		Registerer: rt.Registry,
		Logger:     rt.Log,
	})
	if err != nil {
		return nil, &platform.ConfigError{Var: "FRESHDESK_DOMAIN/FRESHDESK_BASE_URL", Msg: err.Error()}
	}
	rt.Log.Info("writing predictions", "freshdesk", client.BaseURL(), "notes", cfg.Writer.Notes, "tag", cfg.Writer.Tag)
	kv, err := rt.Conn.KV(ctx, pipeline.BucketWriter)
	if err != nil {
		return nil, err
	}
	return writer.New(cfg.Writer, writer.Deps{
		Tickets:         freshdesk.NewAdapter(client),
		KV:              kv,
		Publisher:       rt.Conn,
		Log:             rt.Log,
		Registerer:      rt.Registry,
		PipelineMetrics: rt.Metrics,
		MaxDeliver:      rt.Conn.TopologyConfig().MaxDeliver,
	})
}
