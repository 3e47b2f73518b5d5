// Package pipelinetest holds the end-to-end tests of the pipeline with real
// processes: the fetcher, classifier and writer binaries are built once and
// run as child processes, configured by environment variables, against an
// embedded JetStream server and the Freshdesk simulator served over a
// loopback HTTP listener in the test process.
//
// The tests prove what a user of the pipeline relies on: every new ticket,
// whether announced by webhook or only found by polling, ends with exactly
// one outcome; fields are set where the policy says so and nothing else is
// changed; notes are written once; a stage killed with SIGKILL and restarted
// loses nothing and duplicates nothing; a stage stopped with SIGTERM exits
// within AUTOTRIAGE_SHUTDOWN_TIMEOUT, even when its drain cannot finish, and
// loses nothing either; 429s and 5xx bursts are survived
// with back-off; a person's change made between fetch and write is kept;
// malformed webhooks are refused with 4xx and dead-lettered; every series
// the Grafana dashboard queries is exposed by the stages and by
// `autotriage up`.
//
// The package has no non-test code. `go test -short` skips it.
package pipelinetest
