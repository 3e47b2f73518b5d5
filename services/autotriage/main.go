// Command autotriage is the operator tool of the autotriage pipeline: train,
// evaluate and promote models, classify a text, inspect the pipeline, replay
// a stage, backfill history and handle dead letters. The implementation is
// in internal/cli; subcommands living elsewhere (up, bench) register from an
// init function in a file of this package, e.g. up.go:
//
//	func init() { cli.Register("up", "run everything in one process", runUp) }
package main

import "github.com/autotriage/autotriage/services/internal/cli"

func main() { cli.Main() }
