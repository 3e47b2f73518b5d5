// Package tools pins the versions of the developer tools (buf, staticcheck,
// govulncheck) through Go tool directives, so a fresh machine needs only Go.
//
// The golang.org/x/vulndb tool directive is there for its data, not the
// command: it keeps the vulnerability database version in go.mod and its
// checksum in go.sum (cmd/forks is its one command that imports nothing
// outside the standard library), and vulndb/ turns the OSV files of that
// version into the offline database `make vulncheck` scans with.
// It is kept out of go.work so the tools' dependencies never leak into the
// product's module graph.
package tools
