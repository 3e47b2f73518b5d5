package cli

import (
	"context"
	"io"

	"github.com/autotriage/autotriage/services/internal/targets"
)

func init() {
	Register("trainer", "run the continuous trainer (retrains on a schedule and on request, gated, with rollback)", runTrainer)
}

// runTrainer is the trainer target alone against NATS_URL, shut down like
// the stage binaries. It runs as the admin broker role (NATS_NKEY_FILE of
// the admin): it stores and promotes models and publishes to OUTCOMES.
func runTrainer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return targets.Main(ctx, "autotriage trainer",
		"the continuous trainer: reads the helpdesk's newly resolved tickets (cursor in KV), retrains every AUTOTRIAGE_TRAINER_INTERVAL "+
			"and on `autotriage train --request`, promotes a challenger only when it is no worse than the champion beyond noise on the "+
			"most recent AUTOTRIAGE_TRAINER_HOLDOUT of tickets, and rolls a promotion back when its live precision drops",
		targets.Of("trainer"), args, stdout, stderr)
}
