// Command writer is the writer stage: it applies predictions to Freshdesk
// and publishes an outcome for each. See README.md for its settings. main
// is wiring only: the target is internal/targets, the stage
// internal/writer.
package main

import (
	"context"
	"io"

	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/targets"
)

const (
	program = "writer"
	summary = "applies predictions to Freshdesk and publishes outcomes"
)

func main() { platform.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return targets.Main(ctx, program, summary, targets.Of("writer"), args, stdout, stderr)
}
