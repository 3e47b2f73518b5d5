// Command classifier is the classifier stage: it consumes TICKETS, predicts
// group, priority, type and tags with the promoted model, decides under the
// triage policy and publishes PREDICTIONS. Configuration: environment
// variables (run with --help). main is wiring only: the target is
// internal/targets, the stage internal/classifier.
package main

import (
	"context"
	"io"

	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/targets"
)

const (
	program = "classifier"
	summary = "the autotriage classifier stage (TICKETS -> PREDICTIONS)"
)

func main() { platform.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return targets.Main(ctx, program, summary, targets.Of("classifier"), args, stdout, stderr)
}
