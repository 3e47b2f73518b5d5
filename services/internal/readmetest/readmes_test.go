package readmetest_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/autotriage/autotriage/services/internal/allinone"
	"github.com/autotriage/autotriage/services/internal/classifier"
	"github.com/autotriage/autotriage/services/internal/fetcher"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/readmetest"
	"github.com/autotriage/autotriage/services/internal/triage"
	"github.com/autotriage/autotriage/services/internal/writer"
)

// vars lists the variables of config parts, each once.
func vars(parts ...any) []platform.Var {
	var out []platform.Var
	seen := map[string]bool{}
	for _, p := range parts {
		for _, v := range platform.Vars(p) {
			if !seen[v.Name] {
				seen[v.Name] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// shared is what every stage binary reads besides its own part: the process
// settings and the NATS connection and streams. The stage READMEs point to
// the top-level reference for them.
var shared = vars(platform.Common{}, pipeline.Config{})

// sharedRef is the top-level reference's section of the shared variables.
const sharedRef = "../../README.md#shared-by-every-stage-process-nats-streams"

// The fetcher's README lists every variable of its own part and of the
// Freshdesk client in its table, with their defaults.
func TestFetcherREADME(t *testing.T) {
	own := vars(fetcher.Config{}, freshdesk.Settings{})
	readmetest.Check(t, readmetest.Spec{
		Path: "../../fetcher/README.md", Vars: append(own, shared...),
		Listed: own, Shared: shared, Reference: sharedRef,
	})
}

// The writer's README likewise.
func TestWriterREADME(t *testing.T) {
	own := vars(writer.Config{}, freshdesk.Settings{})
	readmetest.Check(t, readmetest.Spec{
		Path: "../../writer/README.md", Vars: append(own, shared...),
		Listed: own, Shared: shared, Reference: sharedRef,
	})
}

// The deployment guides list no variables of their own: they name the
// variables a site sets, which must be the stages' or the ones the Compose
// files read, with the defaults they state.
func TestDeployREADMEs(t *testing.T) {
	known := append(vars(allinone.Config{}, pipeline.Config{}, classifier.Config{}, triage.Config{}), composeVars(t)...)
	for _, p := range []string{"../../../deploy/README.md", "../../../deploy/k8s/README.md"} {
		readmetest.Check(t, readmetest.Spec{Path: p, Vars: known})
	}
}

// composeVars are the variables the Compose files interpolate (${NAME...}),
// some of which only Compose reads (ports, the image tag).
func composeVars(t *testing.T) []platform.Var {
	t.Helper()
	re := regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`)
	var out []platform.Var
	for _, p := range []string{"../../../docker-compose.yml", "../../../deploy/docker-compose.cluster.yml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out = append(out, platform.Var{Name: m[1]})
		}
	}
	return out
}

// The top-level README's configuration reference is generated (make docs);
// this keeps it from falling behind the code: every variable of every stage
// must be in it.
func TestREADMEListsEveryVariable(t *testing.T) {
	readmetest.Check(t, readmetest.Spec{Path: "../../../README.md", Listed: vars(allinone.Config{}, pipeline.Config{})})
}
