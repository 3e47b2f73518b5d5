// Command writer is the writer stage: it applies predictions to Freshdesk
// and publishes an outcome for each. See README.md for its settings.
package main

import (
	"context"
	"errors"
	"io"

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
	Freshdesk freshdesk.Settings
}

func (c config) Validate() error {
	return platform.FirstError(c.Common.Validate(), c.NATS.Topology.Validate(), c.Writer.Validate(), c.Freshdesk.Validate())
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
	stage, err := writer.Build(ctx, rt, cfg.Writer, cfg.Freshdesk)
	if err != nil {
		return errors.Join(err, rt.Stop())
	}
	rt.WatchConsumer(ctx, "writer", pipeline.StreamPredictions, pipeline.ConsumerWriter)
	runErr := stage.Run(ctx, rt.Conn)
	return errors.Join(runErr, rt.Stop())
}
