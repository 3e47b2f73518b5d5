// Command classifier is the classifier stage: it consumes TICKETS, predicts
// group, priority, type and tags with the promoted model, decides under the
// triage policy and publishes PREDICTIONS. Configuration: environment
// variables (run with --help).
package main

import (
	"context"
	"errors"
	"io"

	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/triage"
)

type config struct {
	platform.Common
	NATS       pipeline.Config
	Classifier classifier.Config
	Triage     triage.Config
}

func (c config) Validate() error {
	return platform.FirstError(c.Common.Validate(), c.NATS.Topology.Validate(), c.Triage.Validate())
}

func main() { platform.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg config
	if err := platform.LoadConfig(&cfg, args, "classifier", "the autotriage classifier stage (TICKETS -> PREDICTIONS)", stdout); err != nil {
		return err
	}
	policy, _ := triage.ParsePolicy(cfg.Triage.Policy) // validated above

	rt, err := service.Start(ctx, "classifier", cfg.Common, cfg.NATS, stderr, service.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rt.Stop()) }()

	stage, err := classifier.Build(ctx, rt, cfg.Classifier, policy)
	if err != nil {
		return err
	}
	rt.WatchConsumer(ctx, "classifier", pipeline.StreamTickets, pipeline.ConsumerClassifier)
	rt.Log.Info("classifier running", "policy", policy.String(), "concurrency", cfg.Classifier.Concurrency)
	return stage.Run(ctx, rt.Conn)
}
