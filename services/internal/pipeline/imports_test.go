package pipeline_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyPipelineTalksToJetStream: the JetStream client is this package's
// implementation detail. Every other package of the module's production
// code (its dependency graph, as `go list -deps` sees it) reaches the broker
// through pipeline's types, so streams, consumers, retries and permissions
// have one owner. And no production package imports the test support of
// package natstest.
func TestOnlyPipelineTalksToJetStream(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/autotriage/autotriage/services/...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const (
		self     = "github.com/autotriage/autotriage/services/internal/pipeline"
		natstest = "github.com/autotriage/autotriage/services/internal/natstest"
	)
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(pkg, "github.com/autotriage/autotriage/") {
			continue
		}
		checked++
		for _, imp := range strings.Fields(imports) {
			if (imp == "github.com/nats-io/nats.go/jetstream" || imp == "github.com/nats-io/nats.go") && pkg != self {
				t.Errorf("%s imports %s; only %s may (use its types)", pkg, imp, self)
			}
			if imp == natstest {
				t.Errorf("%s imports %s, which is test support: production code must not", pkg, imp)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d of the module's packages listed; the check saw too little:\n%s", checked, out)
	}
}
