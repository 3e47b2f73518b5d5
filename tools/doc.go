// Package tools pins the versions of the developer tools (protobuf generator,
// buf, staticcheck) through Go tool directives, so a fresh machine needs only Go.
// It is kept out of go.work so the tools' dependencies never leak into the
// product's module graph.
package tools
