package allinone_test

import (
	"os"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/allinone"
	"github.com/autotriage/autotriage/services/internal/platform"
)

// The README's configuration reference is generated (make docs); this keeps
// it from falling behind the code: every variable of every stage must be in it.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Skipf("README not found: %v", err)
	}
	for _, v := range platform.Vars(allinone.Config{}) {
		if !strings.Contains(string(b), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s; run make docs", v.Name)
		}
	}
}
