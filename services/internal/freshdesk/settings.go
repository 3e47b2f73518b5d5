package freshdesk

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Settings is how a process reaches a Freshdesk account, read from the
// environment with platform.LoadConfig. Every binary embeds it, so one .env
// file serves the fetcher, the writer and the operator CLI alike.
type Settings struct {
	Domain  string          `env:"FRESHDESK_DOMAIN" help:"Freshdesk subdomain (acme for acme.freshdesk.com); required unless FRESHDESK_BASE_URL is set"`
	APIKey  platform.Secret `env:"FRESHDESK_API_KEY" secret:"true" help:"API key of the agent autotriage acts as (an admin, to read groups)"`
	BaseURL string          `env:"FRESHDESK_BASE_URL" help:"API origin overriding https://<domain>.freshdesk.com, e.g. the simulator or a proxy; http:// only to a loopback host unless AUTOTRIAGE_ALLOW_INSECURE_HTTP=true"`
	// AllowInsecureHTTP admits http:// to a non-loopback FRESHDESK_BASE_URL.
	// It exists for the simulator on a container network; the API key is
	// sent in clear text on every request.
	AllowInsecureHTTP bool          `env:"AUTOTRIAGE_ALLOW_INSECURE_HTTP" envDefault:"false" help:"allow an http:// FRESHDESK_BASE_URL on a non-loopback host (the API key then crosses the network in clear text; for a simulator on a private network only)"`
	Account           string        `env:"AUTOTRIAGE_ACCOUNT" help:"account name in subjects and KV keys (default: the Freshdesk subdomain, else \"default\")"`
	Reserve           float64       `env:"AUTOTRIAGE_FRESHDESK_RESERVE" envDefault:"0.2" help:"per-minute API budget left to other integrations: a fraction (<1) of X-RateLimit-Total or a number of credits"`
	Timeout           time.Duration `env:"AUTOTRIAGE_FRESHDESK_TIMEOUT" envDefault:"30s" help:"timeout of one Freshdesk HTTP attempt"`
	MaxRetries        int           `env:"AUTOTRIAGE_FRESHDESK_MAX_RETRIES" envDefault:"4" help:"retries of a failed Freshdesk call before the work is redelivered later (-1: none)"`
}

// Configured reports whether an account is named at all (commands that can
// run without a helpdesk skip it when not).
func (s Settings) Configured() bool {
	return strings.TrimSpace(s.Domain) != "" || strings.TrimSpace(s.BaseURL) != ""
}

// Validate checks the settings of a process that needs the helpdesk.
func (s Settings) Validate() error {
	switch {
	case !s.Configured():
		return &platform.ConfigError{Var: "FRESHDESK_DOMAIN", Msg: "required unless FRESHDESK_BASE_URL is set"}
	case !s.APIKey.IsSet():
		return &platform.ConfigError{Var: "FRESHDESK_API_KEY", Msg: "required (or FRESHDESK_API_KEY_FILE)"}
	case s.Reserve < 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_FRESHDESK_RESERVE", Msg: "must not be negative"}
	case s.Timeout <= 0:
		return &platform.ConfigError{Var: "AUTOTRIAGE_FRESHDESK_TIMEOUT", Msg: "must be positive"}
	}
	// The origin is checked here, before any request, with the same rules
	// New applies (scheme, loopback, credentials in the URL).
	if _, err := s.config().baseURL(); err != nil {
		return s.originError(err)
	}
	return nil
}

func (s Settings) config() *Config {
	return &Config{Domain: s.Domain, BaseURL: s.BaseURL, AllowInsecureHTTP: s.AllowInsecureHTTP}
}

// originError names the variable an origin error is about.
func (s Settings) originError(err error) *platform.ConfigError {
	v := "FRESHDESK_DOMAIN"
	if strings.TrimSpace(s.BaseURL) != "" {
		v = "FRESHDESK_BASE_URL"
	}
	return &platform.ConfigError{Var: v, Msg: err.Error()}
}

// AccountName is the account token in subjects and KV keys: AUTOTRIAGE_ACCOUNT,
// else the subdomain, else "default". Every process must derive it the same way.
func (s Settings) AccountName() string {
	if a := strings.TrimSpace(s.Account); a != "" {
		return a
	}
	if d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s.Domain)), ".freshdesk.com"); d != "" {
		return d
	}
	return "default"
}

// NewClient builds the client. transport, when set, wraps the HTTP
// transport (the writer meters credits per prediction this way).
func (s Settings) NewClient(reg prometheus.Registerer, log *slog.Logger, transport http.RoundTripper) (*Client, error) {
	cfg := Config{
		Domain:            s.Domain,
		APIKey:            s.APIKey,
		BaseURL:           s.BaseURL,
		Reserve:           s.Reserve,
		AllowInsecureHTTP: s.AllowInsecureHTTP,
		Timeout:           s.Timeout,
		MaxRetries:        s.MaxRetries,
		Registerer:        reg,
		Logger:            log,
	}
	if transport != nil {
		cfg.HTTPClient = &http.Client{Timeout: s.Timeout, Transport: transport}
	}
	if _, err := s.config().baseURL(); err != nil {
		return nil, s.originError(err)
	}
	c, err := New(cfg)
	if err != nil {
		return nil, &platform.ConfigError{Var: "FRESHDESK_DOMAIN/FRESHDESK_BASE_URL", Msg: err.Error()}
	}
	return c, nil
}
