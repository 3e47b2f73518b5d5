// Package codeshape holds no code, only tests of the code's shape: rules a
// reviewer would otherwise enforce by eye. Today: no function or method of
// the writer, fetcher, pipeline and Freshdesk simulator packages (their
// subpackages included, test files excluded) is longer than maxFuncLines,
// so each can be held in mind at once.
package codeshape
