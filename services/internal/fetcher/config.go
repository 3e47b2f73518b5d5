package fetcher

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Config is the fetcher stage's own configuration. Its env tags are read by
// platform.LoadConfig; Validate runs after parsing.
type Config struct {
	// Account names the helpdesk account in subjects, message ids and KV
	// keys. Empty: the binary derives it from FRESHDESK_DOMAIN.
	Account string `env:"AUTOTRIAGE_ACCOUNT" help:"account name used in subjects, message ids and KV keys (default: the Freshdesk subdomain)"`

	PollInterval time.Duration `env:"AUTOTRIAGE_FETCHER_POLL_INTERVAL" envDefault:"30s" help:"pause between two polls of updated_since (the safety net behind webhooks)"`
	Overlap      time.Duration `env:"AUTOTRIAGE_FETCHER_OVERLAP" envDefault:"5s" help:"each poll starts this long before the cursor, so updates stamped in an already-read second are not missed (repeats are dropped by message id; every ticket in the window is listed again, at 3 credits per 100)"`
	Start        string        `env:"AUTOTRIAGE_FETCHER_START" envDefault:"now" help:"where triage begins, fixed at the first start of an account and kept in KV: now, a duration back from now (\"24h\") or an RFC 3339 time; the first poll reads updates from there and tickets created before it are never triaged (backfill reads the past in shadow mode)"`
	Concurrency  int           `env:"AUTOTRIAGE_FETCHER_CONCURRENCY" envDefault:"8" help:"ticket versions of one page processed (ledger read, publish) at once"`

	LeaseTTL time.Duration `env:"AUTOTRIAGE_FETCHER_LEASE_TTL" envDefault:"30s" help:"how long the polling lease lasts without renewal; a dead poller is replaced after at most this long (replica clocks must agree to well within it)"`

	WebhookAddr     string          `env:"AUTOTRIAGE_WEBHOOK_ADDR" envDefault:"127.0.0.1:8080" help:"listen address of the webhook endpoint (path /webhooks/freshdesk); loopback unless set, e.g. :8080 behind a TLS reverse proxy or in a container"`
	WebhooksOff     bool            `env:"AUTOTRIAGE_WEBHOOK_DISABLED" envDefault:"false" help:"do not serve webhooks (polling only)"`
	WebhookSecret   platform.Secret `env:"AUTOTRIAGE_WEBHOOK_SECRET" secret:"true" help:"shared secret expected in the webhook header"`
	WebhookHeader   string          `env:"AUTOTRIAGE_WEBHOOK_HEADER" envDefault:"X-Autotriage-Token" help:"name of the header carrying AUTOTRIAGE_WEBHOOK_SECRET"`
	WebhookUser     string          `env:"AUTOTRIAGE_WEBHOOK_USER" help:"basic-auth user name accepted on webhooks (with AUTOTRIAGE_WEBHOOK_PASSWORD)"`
	WebhookPassword platform.Secret `env:"AUTOTRIAGE_WEBHOOK_PASSWORD" secret:"true" help:"basic-auth password accepted on webhooks"`
	WebhookMaxBytes int64           `env:"AUTOTRIAGE_WEBHOOK_MAX_BYTES" envDefault:"65536" help:"largest webhook body accepted; larger ones get 413"`
	WebhookTimeout  time.Duration   `env:"AUTOTRIAGE_WEBHOOK_TIMEOUT" envDefault:"20s" help:"time allowed to fetch and publish the ticket of one webhook before answering 503"`

	// The webhook endpoint's defences before authentication (docs/design.md,
	// "Webhook endpoint under abuse").
	WebhookAllow          string        `env:"AUTOTRIAGE_WEBHOOK_ALLOW" help:"comma-separated CIDRs or IP addresses allowed to post webhooks, e.g. Freshdesk's egress ranges (empty: any source); others get 403"`
	WebhookTrustedProxies string        `env:"AUTOTRIAGE_WEBHOOK_TRUSTED_PROXIES" help:"comma-separated CIDRs or IP addresses of reverse proxies in front of the endpoint; only from these is X-Forwarded-For believed (empty: the TCP peer is the source)"`
	WebhookRate           float64       `env:"AUTOTRIAGE_WEBHOOK_RATE" envDefault:"50" help:"webhook requests per second allowed per source (IPv6: per /64), checked before authentication; above it 429 with Retry-After"`
	WebhookBurst          int           `env:"AUTOTRIAGE_WEBHOOK_BURST" envDefault:"200" help:"webhook requests a source may send at once above AUTOTRIAGE_WEBHOOK_RATE"`
	WebhookMaxSources     int           `env:"AUTOTRIAGE_WEBHOOK_MAX_SOURCES" envDefault:"10000" help:"sources given their own rate-limit bucket; sources beyond it share one bucket (bounds memory under a flood of addresses)"`
	WebhookLogInterval    time.Duration `env:"AUTOTRIAGE_WEBHOOK_LOG_INTERVAL" envDefault:"1m" help:"refused webhooks (401, 403, 429) are logged at most once per interval per kind, then as a count of those suppressed; the metric counts each"`

	Tag                string `env:"AUTOTRIAGE_TAG" envDefault:"autotriage" help:"tag autotriage adds to every ticket it writes; used by the triage filter"`
	TriageStatuses     string `env:"AUTOTRIAGE_TRIAGE_STATUSES" envDefault:"2,3" help:"comma-separated status codes eligible for triage (empty: any); Freshdesk 2 open, 3 pending"`
	TriageWhen         string `env:"AUTOTRIAGE_TRIAGE_WHEN" envDefault:"no_group,untagged" help:"a ticket needs triage when ANY of these holds: no_group, no_type, untagged (no AUTOTRIAGE_TAG), always"`
	TriageCreatedAfter string `env:"AUTOTRIAGE_TRIAGE_CREATED_AFTER" help:"only tickets created at or after this RFC 3339 time or YYYY-MM-DD date are triaged (empty: no limit)"`

	CatalogTTL time.Duration `env:"AUTOTRIAGE_FETCHER_CATALOG_TTL" envDefault:"10m" help:"how long the helpdesk catalog (group names) is cached"`
}

// DefaultConfig returns the defaults the env tags state, for tests and
// embedded use (webhook auth is left unset).
func DefaultConfig() Config {
	return Config{
		PollInterval:       30 * time.Second,
		Overlap:            5 * time.Second,
		Start:              "now",
		Concurrency:        8,
		LeaseTTL:           30 * time.Second,
		WebhookAddr:        "127.0.0.1:8080",
		WebhookHeader:      "X-Autotriage-Token",
		WebhookMaxBytes:    64 << 10,
		WebhookTimeout:     20 * time.Second,
		WebhookRate:        50,
		WebhookBurst:       200,
		WebhookMaxSources:  10000,
		WebhookLogInterval: time.Minute,
		Tag:                "autotriage",
		TriageStatuses:     "2,3",
		TriageWhen:         "no_group,untagged",
		CatalogTTL:         10 * time.Minute,
	}
}

// Validate checks the settings and names the variable at fault.
func (c Config) Validate() error {
	bad := func(v, msg string) error { return &platform.ConfigError{Var: v, Msg: msg} }
	switch {
	case c.PollInterval <= 0:
		return bad("AUTOTRIAGE_FETCHER_POLL_INTERVAL", "must be positive")
	case c.Overlap < 0:
		return bad("AUTOTRIAGE_FETCHER_OVERLAP", "must not be negative")
	case c.Concurrency < 1 || c.Concurrency > 256:
		return bad("AUTOTRIAGE_FETCHER_CONCURRENCY", "must be between 1 and 256")
	case c.LeaseTTL < 300*time.Millisecond:
		return bad("AUTOTRIAGE_FETCHER_LEASE_TTL", "must be at least 300ms")
	case c.WebhookMaxBytes < 1024 || c.WebhookMaxBytes > 16<<20:
		return bad("AUTOTRIAGE_WEBHOOK_MAX_BYTES", "must be between 1024 and 16777216")
	case c.WebhookTimeout <= 0:
		return bad("AUTOTRIAGE_WEBHOOK_TIMEOUT", "must be positive")
	case c.CatalogTTL <= 0:
		return bad("AUTOTRIAGE_FETCHER_CATALOG_TTL", "must be positive")
	case !(c.WebhookRate > 0) || math.IsInf(c.WebhookRate, 0):
		return bad("AUTOTRIAGE_WEBHOOK_RATE", "must be a positive number of requests per second")
	case c.WebhookBurst < 1:
		return bad("AUTOTRIAGE_WEBHOOK_BURST", "must be at least 1")
	case c.WebhookMaxSources < 1 || c.WebhookMaxSources > 1_000_000:
		return bad("AUTOTRIAGE_WEBHOOK_MAX_SOURCES", "must be between 1 and 1000000")
	case c.WebhookLogInterval <= 0:
		return bad("AUTOTRIAGE_WEBHOOK_LOG_INTERVAL", "must be positive")
	}
	if _, err := parsePrefixes(c.WebhookAllow); err != nil {
		return bad("AUTOTRIAGE_WEBHOOK_ALLOW", err.Error())
	}
	if _, err := parsePrefixes(c.WebhookTrustedProxies); err != nil {
		return bad("AUTOTRIAGE_WEBHOOK_TRUSTED_PROXIES", err.Error())
	}
	if _, err := parseStart(c.Start, time.Now()); err != nil {
		return bad("AUTOTRIAGE_FETCHER_START", err.Error())
	}
	if _, err := c.filter(); err != nil {
		var ce *platform.ConfigError
		if errors.As(err, &ce) {
			return ce
		}
		return err
	}
	if !c.WebhooksOff {
		if !c.WebhookSecret.IsSet() && (c.WebhookUser == "" || !c.WebhookPassword.IsSet()) {
			return bad("AUTOTRIAGE_WEBHOOK_SECRET", "webhooks need authentication: set AUTOTRIAGE_WEBHOOK_SECRET, or AUTOTRIAGE_WEBHOOK_USER and AUTOTRIAGE_WEBHOOK_PASSWORD, or AUTOTRIAGE_WEBHOOK_DISABLED=true")
		}
		if (c.WebhookUser == "") != !c.WebhookPassword.IsSet() {
			return bad("AUTOTRIAGE_WEBHOOK_USER", "AUTOTRIAGE_WEBHOOK_USER and AUTOTRIAGE_WEBHOOK_PASSWORD go together")
		}
		if c.WebhookSecret.IsSet() && strings.TrimSpace(c.WebhookHeader) == "" {
			return bad("AUTOTRIAGE_WEBHOOK_HEADER", "must not be empty")
		}
		if c.WebhookSecret.IsSet() && len(c.WebhookSecret.Reveal()) < 16 {
			return bad("AUTOTRIAGE_WEBHOOK_SECRET", "must be at least 16 characters")
		}
	}
	return nil
}

// parseStart reads AUTOTRIAGE_FETCHER_START: "now" (or empty), a duration
// back from now or an RFC 3339 time.
func parseStart(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" {
		return now, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration must not be negative")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, errors.New(`want now, a duration back from now ("24h") or an RFC 3339 time`)
}

// Filter decides which ticket versions need triage. The zero value passes
// every ticket that is neither spam nor deleted.
type Filter struct {
	// Statuses eligible for triage; empty means any.
	Statuses []int
	// When lists conditions of which at least one must hold: "no_group",
	// "no_type", "untagged", "always". Empty means always.
	When []string
	// Tag is autotriage's own tag, for "untagged".
	Tag string
	// CreatedAfter, when set, excludes older tickets.
	CreatedAfter time.Time
}

// Filter reasons, the label values of autotriage_fetcher_filtered_total.
const (
	ReasonSpamDeleted    = "spam_deleted"
	ReasonStatus         = "status"
	ReasonCreatedBefore  = "created_before"
	ReasonAlreadyTriaged = "already_triaged"
	ReasonOwnVersion     = "own_version"
	ReasonOwnWrite       = "own_write"
	ReasonStale          = "stale"
	ReasonOverride       = "override"
	ReasonOutOfRange     = "out_of_range"
	// ReasonBeforeStart: created before the account's triage start
	// (Origin, from AUTOTRIAGE_FETCHER_START).
	ReasonBeforeStart = "before_start"
)

var whenConds = []string{"no_group", "no_type", "untagged", "always"}

func (c Config) filter() (Filter, error) {
	f := Filter{Tag: c.Tag}
	for part := range strings.SplitSeq(c.TriageStatuses, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 {
			return Filter{}, &platform.ConfigError{Var: "AUTOTRIAGE_TRIAGE_STATUSES", Msg: "want comma-separated positive status codes"}
		}
		f.Statuses = append(f.Statuses, n)
	}
	for part := range strings.SplitSeq(c.TriageWhen, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !slices.Contains(whenConds, part) {
			return Filter{}, &platform.ConfigError{Var: "AUTOTRIAGE_TRIAGE_WHEN", Msg: fmt.Sprintf("unknown condition %q; want %s", part, strings.Join(whenConds, ", "))}
		}
		f.When = append(f.When, part)
	}
	if slices.Contains(f.When, "untagged") && strings.TrimSpace(c.Tag) == "" {
		return Filter{}, &platform.ConfigError{Var: "AUTOTRIAGE_TAG", Msg: "must not be empty when AUTOTRIAGE_TRIAGE_WHEN uses untagged"}
	}
	if s := strings.TrimSpace(c.TriageCreatedAfter); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse(time.DateOnly, s)
		}
		if err != nil {
			return Filter{}, &platform.ConfigError{Var: "AUTOTRIAGE_TRIAGE_CREATED_AFTER", Msg: "want an RFC 3339 time or a YYYY-MM-DD date"}
		}
		f.CreatedAfter = t.UTC()
	}
	return f, nil
}
