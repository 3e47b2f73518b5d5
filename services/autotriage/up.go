package main

import (
	"github.com/autotriage/autotriage/services/internal/allinone"
	"github.com/autotriage/autotriage/services/internal/cli"
)

func init() {
	cli.Register("up", "run the whole pipeline in one process: embedded JetStream, the simulator unless FRESHDESK_DOMAIN is set, a starter model, all three stages", allinone.Run)
}
