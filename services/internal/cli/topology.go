package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

func init() {
	Register("topology", "apply the stream, consumer and bucket settings of this environment (admin role)", runTopology)
}

// runTopology is the one place a changed stream setting reaches a running
// system: stages create what is missing and leave the rest as it is.
func runTopology(ctx context.Context, args []string, stdout, _ io.Writer) error {
	f := newFlags("topology", "apply [flags]", "Create or update every stream, durable consumer, KV bucket and the model store with the AUTOTRIAGE_STREAM_*, AUTOTRIAGE_DLQ_* and consumer settings of the environment. Needs the admin role.", stdout)
	var c connOpts
	c.register(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "apply" {
		return usagef("topology", "the only action is apply")
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	if cfg.Role != "" && cfg.Role != pipeline.RoleAdmin {
		return usagef("topology", "topology apply needs the admin role (AUTOTRIAGE_NATS_ROLE=%s)", cfg.Role)
	}
	conn, err := pipeline.Connect(ctx, cfg, Program+"-cli", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.EnsureTopology(ctx); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, "topology applied")
	return err
}
