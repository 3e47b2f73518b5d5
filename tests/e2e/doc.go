// Package e2e holds the end-to-end tests of autotriage: the real images
// (NATS, fetcher, classifier, writer, the Freshdesk simulator and the CLI as
// a one-shot trainer) run as containers on a private Docker network created
// by testcontainers-go, and the tests kill and stop them mid-flow to prove
// that no ticket is lost.
//
// The tests carry the build tag "e2e" and need a Docker engine and the images
// of `make images` (TestMain builds them when they are missing):
//
//	make e2e
//	cd tests/e2e && go test -tags e2e -count=1 -timeout 25m -v ./...
//
// Nothing is pulled: every image is built locally from this repository, and
// testcontainers' reaper (Ryuk), which is itself an image from a registry,
// is disabled; the tests remove their own containers and networks. See
// README.md in this folder.
package e2e
