package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/targets"
)

func load(env map[string]string) (targets.Config, error) {
	var cfg targets.Config
	err := targets.LoadFor(&cfg, targets.Of("writer"), nil, program, "test", &bytes.Buffer{}, env)
	return cfg, err
}

func TestConfigNeedsADomainOrBaseURL(t *testing.T) {
	_, err := load(map[string]string{"FRESHDESK_API_KEY": "k"})
	var ce *platform.ConfigError
	if !errors.As(err, &ce) || ce.Var != "FRESHDESK_DOMAIN" {
		t.Fatalf("err = %v, want one naming FRESHDESK_DOMAIN", err)
	}
	cfg, err := load(map[string]string{"FRESHDESK_API_KEY": "s3cr3t-key", "FRESHDESK_BASE_URL": "http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Writer.Notes || cfg.Writer.Tag != "autotriage" || cfg.Freshdesk.Reserve != 0.2 {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := sprintf(verb, cfg); strings.Contains(s, "s3cr3t-key") {
			t.Errorf("%s prints the API key", verb)
		}
	}
}

func TestConfigRejectsABadLabelMap(t *testing.T) {
	_, err := load(map[string]string{"FRESHDESK_API_KEY": "k", "FRESHDESK_DOMAIN": "acme", "AUTOTRIAGE_LABEL_MAP": "group:Billing"})
	var ce *platform.ConfigError
	if !errors.As(err, &ce) || ce.Var != "AUTOTRIAGE_LABEL_MAP" {
		t.Fatalf("err = %v, want one naming AUTOTRIAGE_LABEL_MAP", err)
	}
}

func sprintf(verb string, v any) string { return fmt.Sprintf(verb, v) }
