package fetcher

import (
	"errors"
	"testing"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/platform"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantVar string // "" = valid
	}{
		{"defaults with secret", func(*Config) {}, ""},
		{"no webhook auth", func(c *Config) { c.WebhookSecret = "" }, "AUTOTRIAGE_WEBHOOK_SECRET"},
		{"no auth but disabled", func(c *Config) { c.WebhookSecret = ""; c.WebhooksOff = true }, ""},
		{"basic auth only", func(c *Config) { c.WebhookSecret = ""; c.WebhookUser = "u"; c.WebhookPassword = "p" }, ""},
		{"user without password", func(c *Config) { c.WebhookUser = "u" }, "AUTOTRIAGE_WEBHOOK_USER"},
		{"short secret", func(c *Config) { c.WebhookSecret = "short" }, "AUTOTRIAGE_WEBHOOK_SECRET"},
		{"bad start", func(c *Config) { c.Start = "yesterday" }, "AUTOTRIAGE_FETCHER_START"},
		{"bad status", func(c *Config) { c.TriageStatuses = "open" }, "AUTOTRIAGE_TRIAGE_STATUSES"},
		{"bad condition", func(c *Config) { c.TriageWhen = "no_group,maybe" }, "AUTOTRIAGE_TRIAGE_WHEN"},
		{"bad date", func(c *Config) { c.TriageCreatedAfter = "2026/01/01" }, "AUTOTRIAGE_TRIAGE_CREATED_AFTER"},
		{"tiny body limit", func(c *Config) { c.WebhookMaxBytes = 10 }, "AUTOTRIAGE_WEBHOOK_MAX_BYTES"},
		{"zero interval", func(c *Config) { c.PollInterval = 0 }, "AUTOTRIAGE_FETCHER_POLL_INTERVAL"},
		{"allow list", func(c *Config) { c.WebhookAllow = " 192.0.2.0/24, 198.51.100.7 ,2001:db8::/32,," }, ""},
		{"bad allow CIDR", func(c *Config) { c.WebhookAllow = "192.0.2.0/24,10.0.0.0/33" }, "AUTOTRIAGE_WEBHOOK_ALLOW"},
		{"allow host name", func(c *Config) { c.WebhookAllow = "freshdesk.com" }, "AUTOTRIAGE_WEBHOOK_ALLOW"},
		{"bad proxy CIDR", func(c *Config) { c.WebhookTrustedProxies = "10.0.0.0/8;10.1.0.0/16" }, "AUTOTRIAGE_WEBHOOK_TRUSTED_PROXIES"},
		{"zero rate", func(c *Config) { c.WebhookRate = 0 }, "AUTOTRIAGE_WEBHOOK_RATE"},
		{"zero burst", func(c *Config) { c.WebhookBurst = 0 }, "AUTOTRIAGE_WEBHOOK_BURST"},
		{"no sources", func(c *Config) { c.WebhookMaxSources = 0 }, "AUTOTRIAGE_WEBHOOK_MAX_SOURCES"},
		{"zero log interval", func(c *Config) { c.WebhookLogInterval = 0 }, "AUTOTRIAGE_WEBHOOK_LOG_INTERVAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.WebhookSecret = testSecret
			tc.mod(&c)
			err := c.Validate()
			var ce *platform.ConfigError
			switch {
			case tc.wantVar == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantVar != "" && (!errors.As(err, &ce) || ce.Var != tc.wantVar):
				t.Fatalf("error %v, want one naming %s", err, tc.wantVar)
			}
		})
	}
}

func TestParseStart(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if got, err := parseStart("24h", now); err != nil || !got.Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("24h: %s %v", got, err)
	}
	if got, err := parseStart("2026-02-01T00:00:00+01:00", now); err != nil || !got.Equal(time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)) {
		t.Fatalf("RFC 3339: %s %v", got, err)
	}
	if _, err := parseStart("-1h", now); err == nil {
		t.Fatal("negative duration accepted")
	}
}

func TestFilterCheck(t *testing.T) {
	c := DefaultConfig()
	c.TriageCreatedAfter = "2026-01-01"
	f, err := c.filter()
	if err != nil {
		t.Fatal(err)
	}
	base := ticketsystem.Ticket{ID: 1, Status: 2, Tags: []string{}, CreatedAt: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		name string
		mod  func(*ticketsystem.Ticket)
		want string
	}{
		{"new ticket", func(*ticketsystem.Ticket) {}, ""},
		{"pending", func(t *ticketsystem.Ticket) { t.Status = 3 }, ""},
		{"resolved", func(t *ticketsystem.Ticket) { t.Status = 4 }, ReasonStatus},
		{"deleted", func(t *ticketsystem.Ticket) { t.Deleted = true }, ReasonSpamDeleted},
		{"old", func(t *ticketsystem.Ticket) { t.CreatedAt = t.CreatedAt.AddDate(-1, 0, 0) }, ReasonCreatedBefore},
		{"grouped, untagged", func(t *ticketsystem.Ticket) { t.GroupID = 4 }, ""},
		{"tagged, no group", func(t *ticketsystem.Ticket) { t.Tags = []string{"autotriage"} }, ""},
		{"grouped and tagged", func(t *ticketsystem.Ticket) { t.GroupID = 4; t.Tags = []string{"x", "autotriage"} }, ReasonAlreadyTriaged},
	} {
		tk := base
		tc.mod(&tk)
		if got := f.Check(&tk); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestToProtoCustomFields(t *testing.T) {
	now := time.Now()
	tk := &ticketsystem.Ticket{ID: 3, Subject: "s", Priority: 2, Status: 2, GroupID: 7, UpdatedAt: now, CreatedAt: now,
		CustomFields: map[string]any{"cf_s": "x", "cf_b": true, "cf_i": int64(1 << 40), "cf_f": 1.5, "cf_nil": nil}}
	p := ToProto("freshdesk", "acme", tk, "Billing", v1.Arrival_ARRIVAL_POLL, now)
	if p.GroupName != "Billing" || p.GroupId != 7 || p.Priority != 2 || p.Arrival != v1.Arrival_ARRIVAL_POLL {
		t.Fatalf("%+v", p)
	}
	if len(p.CustomFields) != 4 {
		t.Fatalf("custom fields %v: the nil one must be absent", p.CustomFields)
	}
	if p.CustomFields["cf_s"].GetStringValue() != "x" || !p.CustomFields["cf_b"].GetBoolValue() ||
		p.CustomFields["cf_i"].GetIntValue() != 1<<40 || p.CustomFields["cf_f"].GetNumberValue() != 1.5 {
		t.Fatalf("custom fields %v", p.CustomFields)
	}
}

func TestVersionIDs(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	if got := VersionID("freshdesk", "acme", 42, at); got != "freshdesk:acme:42:2026-01-02T02:04:05Z" {
		t.Fatal(got)
	}
	if got := OverrideID("freshdesk", "acme", 42, "group", at); got != "override:freshdesk:acme:42:group:2026-01-02T02:04:05Z" {
		t.Fatal(got)
	}
}
