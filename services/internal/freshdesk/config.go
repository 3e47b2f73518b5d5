// Package freshdesk is the production client for the Freshdesk REST API v2
// and the ticketsystem.Adapter built on it.
//
// The client authenticates with an API key, paces itself by the account's
// per-minute budget (X-RateLimit-* headers) while keeping a reserve for other
// integrations, retries what is safe to retry, caps every response body, and
// turns every documented error status into a ticketsystem.Error. The facts it
// relies on are in docs/freshdesk-api.md of the shared material.
package freshdesk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Secret is the credential type shared by every package: it prints as
// "[redacted]" in every fmt verb and in JSON and slog output, so a Config can
// be logged safely.
type Secret = platform.Secret

const redacted = "[redacted]"

func scrubSecret(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, redacted)
}

// Defaults applied by New for zero Config fields.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRetries       = 4
	DefaultMaxResponseBytes = 8 << 20
	DefaultUserAgent        = "autotriage-freshdesk/1"
)

// Config configures a Client. Only APIKey and one of Domain or BaseURL are
// required.
type Config struct {
	// Domain is the account's subdomain: "acme" for acme.freshdesk.com.
	Domain string
	// APIKey is the agent's API key; it is sent as the Basic-auth user name
	// with the password "X".
	APIKey Secret
	// BaseURL overrides https://<Domain>.freshdesk.com (simulator, proxy).
	// Link headers and redirects pointing at another origin are not
	// followed, so the key is only ever sent to this origin. Plain http is
	// refused unless the host is loopback or AllowInsecureHTTP is set: the
	// key travels in every request's Authorization header.
	BaseURL string
	// AllowInsecureHTTP admits an http:// BaseURL on a non-loopback host
	// (a simulator on a private container network).
	AllowInsecureHTTP bool
	// Timeout bounds one HTTP attempt (not the retries); default 30s.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt; 0 means
	// DefaultMaxRetries, a negative value disables retries.
	MaxRetries int
	// Reserve is the part of the per-minute budget left to other
	// integrations: a value in (0,1) is a fraction of X-RateLimit-Total, a
	// value >= 1 a number of credits. When a call would take Remaining below
	// the reserve, it waits for the minute window to reset.
	Reserve float64
	// UserAgent is sent on every request; default DefaultUserAgent.
	UserAgent string
	// HTTPClient is used for requests; default a client with Timeout over
	// NewTransport. Its own Timeout, if set, takes precedence.
	HTTPClient *http.Client
	// MaxResponseBytes caps every response body; default 8 MiB.
	MaxResponseBytes int64
	// Registerer, if set, receives the client's Prometheus metrics. The
	// global registry is never used implicitly.
	Registerer prometheus.Registerer
	// Logger receives retry and pacing events at debug/warn level; default
	// discards. Credentials are never logged.
	Logger *slog.Logger
	// Now and Sleep replace the clock and the wait between attempts (tests).
	// Sleep must return ctx.Err() if ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// BackoffBase and BackoffMax shape the jittered exponential back-off;
	// defaults 500ms and 30s.
	BackoffBase time.Duration
	BackoffMax  time.Duration
}

var domainRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// baseURL validates the configuration and returns the API origin.
func (c *Config) baseURL() (*url.URL, error) {
	raw := c.BaseURL
	if raw == "" {
		d := strings.ToLower(strings.TrimSpace(c.Domain))
		d = strings.TrimSuffix(d, ".freshdesk.com")
		if !domainRE.MatchString(d) {
			return nil, fmt.Errorf("freshdesk: invalid domain %q: want the subdomain of <domain>.freshdesk.com", c.Domain)
		}
		raw = "https://" + d + ".freshdesk.com"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("freshdesk: invalid base URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("freshdesk: invalid base URL %q: want http(s)://host", raw)
	}
	if u.User != nil {
		return nil, errors.New("freshdesk: base URL must not carry credentials")
	}
	if u.Scheme == "http" && !c.AllowInsecureHTTP && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%w: %s would carry the API key in clear text; use https://, or set AUTOTRIAGE_ALLOW_INSECURE_HTTP=true on a trusted network (a simulator's)",
			ErrInsecureHTTP, u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// ErrInsecureHTTP is the error of an http:// base URL on a non-loopback
// host without AllowInsecureHTTP.
var ErrInsecureHTTP = errors.New("freshdesk: plain http to a non-loopback host")

// isLoopbackHost reports whether host (no port) names this machine without
// leaving it: "localhost" or an address in 127.0.0.0/8 or ::1. Other names
// are not resolved: what a name resolves to can change after the check.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// sameOrigin reports whether u has the scheme, host and port of base.
func sameOrigin(u, base *url.URL) bool {
	return strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host)
}

func defaultSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
