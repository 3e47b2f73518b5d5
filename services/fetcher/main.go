// Command fetcher is the fetcher stage: it polls Freshdesk's change feed
// (one replica per account, elected by a lease in KV), serves Freshdesk
// automation-rule webhooks on every replica, and publishes ticket versions
// to TICKETS. Configuration comes from the environment; run with --help for
// the reference. main is wiring only: the target is internal/targets, the
// stage internal/fetcher.
package main

import (
	"context"
	"io"

	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/targets"
)

const (
	program = "fetcher"
	summary = "reads Freshdesk tickets (poll and webhooks) into the autotriage pipeline"
)

func main() { platform.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return targets.Main(ctx, program, summary, targets.Of("fetcher"), args, stdout, stderr)
}
