package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/platform"
)

func load(env map[string]string) (config, error) {
	var cfg config
	err := platform.LoadConfigFrom(&cfg, nil, "freshdesk-sim", "", io.Discard, env)
	return cfg, err
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8089" || cfg.Plan != "unlimited" || cfg.TimeScale != 1 || cfg.APIKey != "sim-admin-key" {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestLoadConfigInvalidNamesVariable(t *testing.T) {
	tests := map[string]string{
		"FRESHDESK_SIM_TIME_SCALE":       "fast",
		"FRESHDESK_SIM_PLAN":             "gold",
		"FRESHDESK_SIM_HISTORY":          "-3",
		"FRESHDESK_SIM_INDEX_DELAY":      "soon",
		"FRESHDESK_SIM_FAULT_ERROR_RATE": "2",
		"FRESHDESK_SIM_LOG_LEVEL":        "loud",
	}
	for name, val := range tests {
		_, err := load(map[string]string{name: val})
		var ce *platform.ConfigError
		if !errors.As(err, &ce) || ce.Var != name || strings.Contains(ce.Error(), "\n") {
			t.Errorf("%s=%s: %v", name, val, err)
		}
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var b bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &b, io.Discard); !errors.Is(err, platform.ErrHelp) {
		t.Fatalf("help: %v", err)
	}
	for _, v := range platform.Vars(config{}) {
		if !strings.Contains(b.String(), v.Name) || v.Help == "" {
			t.Errorf("%s undocumented", v.Name)
		}
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	cfg, err := load(map[string]string{"FRESHDESK_SIM_ADDR": "127.0.0.1:0", "FRESHDESK_SIM_HISTORY": "10", "FRESHDESK_SIM_LOG_LEVEL": "error"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, io.Discard, ready) }()
	addr := <-ready
	resp, err := http.Get("http://" + addr + "/_sim/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v2/tickets?updated_since=2000-01-01", nil)
	req.SetBasicAuth("sim-admin-key", "X")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp2.Body.Close()
	if resp.StatusCode != 200 || resp2.StatusCode != 200 {
		t.Fatalf("healthz %d, tickets %d", resp.StatusCode, resp2.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
