package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8089" || cfg.Plan != "unlimited" || cfg.TimeScale != 1 || cfg.APIKey != "sim-admin-key" {
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
		_, err := loadConfig(map[string]string{name: val})
		var ce *configError
		if !errors.As(err, &ce) || ce.name != name || strings.Contains(ce.Error(), "\n") {
			t.Errorf("%s=%s: %v", name, val, err)
		}
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	var b bytes.Buffer
	printHelp(&b)
	typ := reflect.TypeFor[config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !strings.Contains(b.String(), prefix+f.Tag.Get("env")) || f.Tag.Get("help") == "" {
			t.Errorf("%s undocumented", f.Name)
		}
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runWith(ctx, map[string]string{"FRESHDESK_SIM_ADDR": "127.0.0.1:0", "FRESHDESK_SIM_HISTORY": "10", "FRESHDESK_SIM_LOG_LEVEL": "error"}, ready)
	}()
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
