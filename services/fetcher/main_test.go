package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/targets"
)

func load(env map[string]string) (targets.Config, error) {
	var c targets.Config
	err := targets.LoadFor(&c, targets.Of("fetcher"), nil, program, "test", io.Discard, env)
	return c, err
}

func TestConfigNamesTheMissingVariable(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		wantVar string
	}{
		{map[string]string{"FRESHDESK_DOMAIN": "acme", "AUTOTRIAGE_WEBHOOK_SECRET": "0123456789abcdef"}, "FRESHDESK_API_KEY"},
		{map[string]string{"FRESHDESK_API_KEY": "k", "AUTOTRIAGE_WEBHOOK_SECRET": "0123456789abcdef"}, "FRESHDESK_DOMAIN"},
		{map[string]string{"FRESHDESK_API_KEY": "k", "FRESHDESK_DOMAIN": "acme"}, "AUTOTRIAGE_WEBHOOK_SECRET"},
	} {
		_, err := load(tc.env)
		var ce *platform.ConfigError
		if !errors.As(err, &ce) || ce.Var != tc.wantVar {
			t.Fatalf("env %v: %v, want an error naming %s", tc.env, err, tc.wantVar)
		}
	}
}

func TestConfigAccount(t *testing.T) {
	c, err := load(map[string]string{"FRESHDESK_API_KEY": "k", "FRESHDESK_DOMAIN": "Acme.freshdesk.com", "AUTOTRIAGE_WEBHOOK_DISABLED": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Account() != "acme" {
		t.Fatalf("account %q, want acme", c.Account())
	}
	simEnv := map[string]string{"FRESHDESK_API_KEY": "k", "FRESHDESK_BASE_URL": "http://sim:8081",
		"AUTOTRIAGE_ACCOUNT": "demo", "AUTOTRIAGE_WEBHOOK_SECRET": "0123456789abcdef"}
	// Plain http to a host on the network would carry the key in clear
	// text: refused at startup unless explicitly allowed.
	if _, err := load(simEnv); err == nil || !strings.Contains(err.Error(), "FRESHDESK_BASE_URL") || !strings.Contains(err.Error(), "AUTOTRIAGE_ALLOW_INSECURE_HTTP") {
		t.Fatalf("http://sim:8081 without AUTOTRIAGE_ALLOW_INSECURE_HTTP: %v; want refused", err)
	}
	simEnv["AUTOTRIAGE_ALLOW_INSECURE_HTTP"] = "true"
	c, err = load(simEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Account() != "demo" || c.Freshdesk.APIKey.Reveal() != "k" {
		t.Fatalf("account %q", c.Account())
	}
}
