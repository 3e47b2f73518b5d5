package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testConfig struct {
	Common
	Domain  string        `env:"FRESHDESK_DOMAIN,required" help:"Freshdesk subdomain"`
	APIKey  Secret        `env:"FRESHDESK_API_KEY" secret:"true" help:"API key"`
	Workers int           `env:"AUTOTRIAGE_WORKERS" envDefault:"4" help:"workers"`
	Poll    time.Duration `env:"AUTOTRIAGE_POLL" envDefault:"30s" help:"poll interval"`
}

func load(t *testing.T, env map[string]string, args ...string) (testConfig, string, error) {
	t.Helper()
	var cfg testConfig
	var out bytes.Buffer
	err := LoadConfigFrom(&cfg, args, "svc", "a test service", &out, env)
	return cfg, out.String(), err
}

func TestConfigDefaultsAndValues(t *testing.T) {
	cfg, _, err := load(t, map[string]string{"FRESHDESK_DOMAIN": "acme", "AUTOTRIAGE_WORKERS": "8"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain != "acme" || cfg.Workers != 8 || cfg.Poll != 30*time.Second || cfg.LogLevel != "info" || cfg.DebugAddr != "127.0.0.1:9090" || cfg.Pprof {
		t.Fatalf("unexpected config %+v", cfg)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "config: FRESHDESK_DOMAIN: required variable is not set"},
		{map[string]string{"FRESHDESK_DOMAIN": "a", "AUTOTRIAGE_WORKERS": "many"}, "config: AUTOTRIAGE_WORKERS: invalid value"},
		{map[string]string{"FRESHDESK_DOMAIN": "a", "AUTOTRIAGE_POLL": "soon"}, "config: AUTOTRIAGE_POLL: invalid value"},
		{map[string]string{"FRESHDESK_DOMAIN": "a", "AUTOTRIAGE_LOG_LEVEL": "loud"}, "config: AUTOTRIAGE_LOG_LEVEL:"},
	}
	for _, c := range cases {
		_, _, err := load(t, c.env)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("env %v: got %v, want prefix %q", c.env, err, c.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error spans lines: %q", err)
		}
		var buf bytes.Buffer
		if code := ExitCode(err, &buf, "svc"); code != ExitConfig || strings.Count(buf.String(), "\n") != 1 {
			t.Errorf("exit code %d, output %q", code, buf.String())
		}
	}
}

func TestUnknownArgumentIsAConfigError(t *testing.T) {
	_, _, err := load(t, map[string]string{"FRESHDESK_DOMAIN": "a"}, "--bogus")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
}

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := os.WriteFile(p, []byte("s3cr3t-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := load(t, map[string]string{"FRESHDESK_DOMAIN": "a", "FRESHDESK_API_KEY_FILE": p})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIKey.Reveal() != "s3cr3t-key" {
		t.Fatalf("secret from file: %q", cfg.APIKey.Reveal())
	}
	_, _, err = load(t, map[string]string{"FRESHDESK_DOMAIN": "a", "FRESHDESK_API_KEY_FILE": p, "FRESHDESK_API_KEY": "x"})
	if err == nil || !strings.Contains(err.Error(), "FRESHDESK_API_KEY") {
		t.Fatalf("both set: %v", err)
	}
	_, _, err = load(t, map[string]string{"FRESHDESK_DOMAIN": "a", "FRESHDESK_API_KEY_FILE": filepath.Join(dir, "missing")})
	if err == nil || !strings.Contains(err.Error(), "FRESHDESK_API_KEY_FILE") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	_, out, err := load(t, map[string]string{}, "--help")
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("help: %v", err)
	}
	for _, v := range []string{"FRESHDESK_DOMAIN", "(required)", "FRESHDESK_API_KEY_FILE", "AUTOTRIAGE_WORKERS", "30s", "AUTOTRIAGE_LOG_LEVEL", "AUTOTRIAGE_DEBUG_ADDR", "poll interval"} {
		if !strings.Contains(out, v) {
			t.Errorf("help lacks %q:\n%s", v, out)
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	cfg := testConfig{Domain: "acme", APIKey: "hunter2-api-key"}
	var logs bytes.Buffer
	log := NewLogger(&logs, slog.LevelDebug, "svc")
	log.Info("config", "cfg", cfg, "key", cfg.APIKey, "api_key", "hunter2-api-key", "authorization", "Basic aHVudGVyMg==")
	js, _ := json.Marshal(cfg)
	for _, s := range []string{
		fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.APIKey),
		fmt.Sprintf("%q", cfg.APIKey), fmt.Sprint(cfg.APIKey), string(js), logs.String(),
		fmt.Errorf("wrapped: %v", cfg.APIKey).Error(),
	} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "aHVudGVyMg") {
			t.Errorf("secret leaked: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "[redacted]") {
		t.Errorf("expected a redaction marker in %s", logs.String())
	}
}

func TestDebugHandler(t *testing.T) {
	reg := NewRegistry("svc")
	h := NewHealth()
	ready := false
	h.Check("nats", func() error {
		if !ready {
			return errors.New("not connected")
		}
		return nil
	})
	srv := httptest.NewServer(DebugHandler(reg, h, true))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not connected") {
		t.Fatalf("readyz before ready: %d %s", code, body)
	}
	ready = true
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz when ready: %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "autotriage_build_info") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d", code)
	}
	if code, _ := get("/debug/pprof/"); code != 200 {
		t.Fatalf("pprof %d", code)
	}
	if code, body := get("/version"); code != 200 || !strings.Contains(body, "go_version") {
		t.Fatalf("version %d %s", code, body)
	}
}

// Profiles are opt-in: with the shared configuration as loaded from an
// environment without AUTOTRIAGE_PPROF every pprof path is 404, and
// AUTOTRIAGE_PPROF=true serves them.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	paths := []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine", "/debug/pprof/cmdline", "/debug/pprof/symbol"}
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{map[string]string{}, http.StatusNotFound},
		{map[string]string{"AUTOTRIAGE_PPROF": "false"}, http.StatusNotFound},
		{map[string]string{"AUTOTRIAGE_PPROF": "true"}, http.StatusOK},
	} {
		var cfg Common
		if err := LoadConfigFrom(&cfg, nil, "svc", "", io.Discard, tc.env); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(DebugHandler(NewRegistry("svc"), NewHealth(), cfg.Pprof))
		for _, p := range paths {
			resp, err := http.Get(srv.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("env %v: GET %s = %d, want %d", tc.env, p, resp.StatusCode, tc.want)
			}
		}
		// The rest of the debug server is there either way.
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("env %v: /metrics %d", tc.env, resp.StatusCode)
		}
		srv.Close()
	}
}
