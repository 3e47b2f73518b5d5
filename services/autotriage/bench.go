package main

import (
	"github.com/autotriage/autotriage/services/internal/bench"
	"github.com/autotriage/autotriage/services/internal/cli"
)

func init() {
	cli.Register("bench", "measure classifier quality and speed, pipeline throughput, API credits and memory; write bench-out/report.md and .json", bench.Run)
}
