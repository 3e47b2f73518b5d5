package main

import (
	"testing"

	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/readmetest"
)

// The README's table lists every variable with the default the code has,
// and names no other.
func TestREADMEListsEveryVariable(t *testing.T) {
	vars := platform.Vars(config{})
	readmetest.Check(t, readmetest.Spec{Path: "README.md", Vars: vars, Listed: vars})
}
