package targets_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/service"
	"github.com/autotriage/autotriage/services/internal/targets"
)

// A list of targets comes back in the pipeline's order, each once, however
// it was written; a name that is no target is an error naming the setting
// and the targets there are.
func TestParse(t *testing.T) {
	ts, err := targets.Parse(" Writer,fetcher,writer,", "--targets")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(targets.NamesOf(ts), ","); got != "fetcher,writer" {
		t.Errorf("parsed %q, want fetcher,writer", got)
	}
	for _, bad := range []string{"", ",", "fetcher,console"} {
		_, err := targets.Parse(bad, "--targets")
		var ce *platform.ConfigError
		if !errors.As(err, &ce) || ce.Var != "--targets" || !strings.Contains(ce.Msg, strings.Join(targets.Names(), ", ")) {
			t.Errorf("Parse(%q): %v, want an error naming --targets and the targets", bad, err)
		}
	}
	if !targets.NeedHelpdesk(targets.Of("writer")) || targets.NeedHelpdesk(targets.Of("classifier")) {
		t.Error("the writer talks to the helpdesk, the classifier does not")
	}
}

// Each target reads and validates only its parts: the classifier starts
// without any Freshdesk setting, the writer not, and a stage's --help
// lists no other stage's variables.
func TestEachTargetReadsItsParts(t *testing.T) {
	var cfg targets.Config
	if err := targets.LoadFor(&cfg, targets.Of("classifier"), nil, "classifier", "", io.Discard, map[string]string{}); err != nil {
		t.Errorf("classifier without Freshdesk settings: %v", err)
	}
	cfg = targets.Config{}
	err := targets.LoadFor(&cfg, targets.Of("writer"), nil, "writer", "", io.Discard, map[string]string{})
	var ce *platform.ConfigError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Var, "FRESHDESK_") {
		t.Errorf("writer without Freshdesk settings: %v, want an error naming a FRESHDESK_ variable", err)
	}
	var help bytes.Buffer
	if err := targets.LoadFor(&cfg, targets.Of("classifier"), []string{"--help"}, "classifier", "", &help, map[string]string{}); !errors.Is(err, platform.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, other := range []string{"FRESHDESK_API_KEY", "AUTOTRIAGE_WRITER_CONCURRENCY", "AUTOTRIAGE_FETCHER_POLL_INTERVAL", "AUTOTRIAGE_TRAINER_INTERVAL", "AUTOTRIAGE_NATS_NKEY_DIR"} {
		if strings.Contains(help.String(), other+" ") {
			t.Errorf("the classifier's help lists %s", other)
		}
	}
	for _, own := range []string{"NATS_URL", "AUTOTRIAGE_POLICY", "AUTOTRIAGE_CLASSIFIER_CONCURRENCY", "AUTOTRIAGE_SHUTDOWN_TIMEOUT"} {
		if !strings.Contains(help.String(), own+" ") {
			t.Errorf("the classifier's help lacks %s", own)
		}
	}
}

// Several targets in one process connect as several roles: one identity
// for all of them is refused before anything connects, naming the setting
// that gives one seed per role.
func TestSeveralTargetsNeedOneIdentityEach(t *testing.T) {
	var cfg targets.Config
	env := map[string]string{"NATS_NKEY_FILE": "/nonexistent/writer.nk", "AUTOTRIAGE_DEBUG_ADDR": "127.0.0.1:0"}
	ts := targets.Of("classifier")
	if err := targets.LoadFor(&cfg, ts, nil, "test", "", io.Discard, env); err != nil {
		t.Fatal(err)
	}
	_, err := targets.Connect(context.Background(), &cfg, targets.Of("classifier", "trainer"), io.Discard, service.Options{NoDebugServer: true})
	var ce *platform.ConfigError
	if !errors.As(err, &ce) || ce.Var != "AUTOTRIAGE_NATS_NKEY_DIR" {
		t.Fatalf("two targets with one NATS_NKEY_FILE: %v, want an error naming AUTOTRIAGE_NATS_NKEY_DIR", err)
	}
}
