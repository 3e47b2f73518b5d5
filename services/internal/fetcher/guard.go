package fetcher

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/autotriage/autotriage/services/internal/platform"
)

// Webhook refusal reasons, the label values of
// autotriage_fetcher_webhook_refused_total.
const (
	RefusedSource      = "source_not_allowed" // 403: outside AUTOTRIAGE_WEBHOOK_ALLOW
	RefusedRateLimited = "rate_limited"       // 429: the source's bucket is empty
	RefusedMissingAuth = "missing_credentials"
	RefusedBadAuth     = "bad_credentials"
)

var refusedReasons = []string{RefusedSource, RefusedRateLimited, RefusedMissingAuth, RefusedBadAuth}

// maxForwardedHops bounds how much of X-Forwarded-For is read: a chain of
// trusted proxies longer than this is not a deployment, it is a header
// stuffed by a client.
const maxForwardedHops = 16

// parsePrefixes reads a comma-separated list of CIDRs and bare addresses
// (a bare address is a /32 or /128).
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR: %w", part, err)
			}
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR: %w", part, err)
		}
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// webhookGuard holds what the webhook endpoint checks before it looks at
// credentials: where a request comes from, whether that source may post,
// and whether it posts too fast.
type webhookGuard struct {
	allow   []netip.Prefix // empty: every source
	proxies []netip.Prefix // empty: X-Forwarded-For is ignored
	limits  *sourceLimiter
	logs    *logLimiter
}

func newWebhookGuard(cfg Config, log *slog.Logger) (*webhookGuard, error) {
	allow, err := parsePrefixes(cfg.WebhookAllow)
	if err != nil {
		return nil, &platform.ConfigError{Var: "AUTOTRIAGE_WEBHOOK_ALLOW", Msg: err.Error()}
	}
	proxies, err := parsePrefixes(cfg.WebhookTrustedProxies)
	if err != nil {
		return nil, &platform.ConfigError{Var: "AUTOTRIAGE_WEBHOOK_TRUSTED_PROXIES", Msg: err.Error()}
	}
	// Unset (zero) settings of a Config built in code take the defaults;
	// the binaries' Validate refuses bad ones.
	def := DefaultConfig()
	if !(cfg.WebhookRate > 0) || math.IsInf(cfg.WebhookRate, 0) {
		cfg.WebhookRate = def.WebhookRate
	}
	if cfg.WebhookBurst < 1 {
		cfg.WebhookBurst = def.WebhookBurst
	}
	if cfg.WebhookMaxSources < 1 {
		cfg.WebhookMaxSources = def.WebhookMaxSources
	}
	if cfg.WebhookLogInterval <= 0 {
		cfg.WebhookLogInterval = def.WebhookLogInterval
	}
	return &webhookGuard{
		allow:   allow,
		proxies: proxies,
		limits:  newSourceLimiter(cfg.WebhookRate, cfg.WebhookBurst, cfg.WebhookMaxSources),
		logs:    newLogLimiter(log, cfg.WebhookLogInterval),
	}, nil
}

// source is the address a request is attributed to: the TCP peer, unless
// the peer is a trusted proxy, in which case X-Forwarded-For is read from
// the right (the hop the proxy itself added) past every trusted proxy to
// the first address that is not one. Entries left of that are written by
// the client and never believed. An unparsable entry stops the walk at the
// trusted hop to its right, so a garbled header can only attribute the
// request to a proxy, never to an address of the client's choosing. The
// zero Addr means the peer address could not be read.
func (g *webhookGuard) source(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if len(g.proxies) == 0 || !peer.IsValid() || !containsAddr(g.proxies, peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	src := peer
	for i, n := len(hops)-1, 0; i >= 0 && n < maxForwardedHops; i, n = i-1, n+1 {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return src
		}
		src = a.Unmap().WithZone("")
		if !containsAddr(g.proxies, src) {
			return src
		}
	}
	return src
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(remote); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// allowed reports whether src may post at all.
func (g *webhookGuard) allowed(src netip.Addr) bool {
	return len(g.allow) == 0 || (src.IsValid() && containsAddr(g.allow, src))
}

// sourceLimiter is a token bucket per source. Memory is bounded two ways:
// a bucket idle long enough to have refilled is indistinguishable from a
// new one, so it is dropped (swept at most once per refill time); and at
// most max sources are tracked — sources beyond that share one overflow
// bucket, so a flood of new addresses is throttled as one source instead
// of growing the map or evicting the buckets of the sources that are
// actually busy.
type sourceLimiter struct {
	rate  rate.Limit
	burst int
	max   int
	idle  time.Duration

	mu        sync.Mutex
	m         map[netip.Addr]*sourceBucket
	overflow  *rate.Limiter
	lastSweep time.Time
}

type sourceBucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newSourceLimiter(perSecond float64, burst, maxSources int) *sourceLimiter {
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &sourceLimiter{
		rate: rate.Limit(perSecond), burst: burst, max: maxSources,
		idle:     max(refill, time.Second),
		m:        make(map[netip.Addr]*sourceBucket),
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst),
	}
}

// key groups the addresses one party controls: an IPv6 host usually has a
// whole /64, so per-address buckets would give it 2^64 of them.
func limitKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes a token for src at now. When the bucket is empty it returns
// false and how long until a token is back.
func (l *sourceLimiter) allow(src netip.Addr, now time.Time) (bool, time.Duration) {
	key := limitKey(src)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		for k, b := range l.m {
			if now.Sub(b.last) >= l.idle {
				delete(l.m, k)
			}
		}
		l.lastSweep = now
	}
	var lim *rate.Limiter
	if b, ok := l.m[key]; ok {
		b.last = now
		lim = b.lim
	} else if len(l.m) < l.max {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[key] = &sourceBucket{lim: lim, last: now}
	} else {
		lim = l.overflow
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing / float64(l.rate) * float64(time.Second))
}

// tracked is the number of sources with their own bucket.
func (l *sourceLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// retryAfter is the Retry-After value, in whole seconds (at least 1), of a
// wait of d.
func retryAfter(d time.Duration) string {
	return fmt.Sprint(max(int64(math.Ceil(d.Seconds())), 1))
}

// logLimiter logs refusals of one kind at most once per interval: the first
// refusal in full, then, at the end of the interval, one line counting the
// refusals of that kind it suppressed (if any). A flood of bad requests
// therefore costs a line per interval, while the metric counts each.
type logLimiter struct {
	log      *slog.Logger
	interval time.Duration

	mu    sync.Mutex
	kinds map[string]*logWindow
}

type logWindow struct {
	until      time.Time // refusals before this are suppressed
	suppressed int
	lastSource string
	flushing   bool // a summary is scheduled for until
}

func newLogLimiter(log *slog.Logger, interval time.Duration) *logLimiter {
	return &logLimiter{log: log, interval: interval, kinds: make(map[string]*logWindow)}
}

// warn logs msg with attrs, or counts it as suppressed if a line of this
// kind was logged less than an interval ago. source is the refused
// request's source, named in the summary.
func (l *logLimiter) warn(kind, source, msg string, attrs ...any) {
	now := time.Now()
	l.mu.Lock()
	w := l.kinds[kind]
	if w == nil {
		w = &logWindow{}
		l.kinds[kind] = w
	}
	if !now.Before(w.until) {
		w.until = now.Add(l.interval)
		l.mu.Unlock()
		l.log.Warn(msg, append(attrs, "further_logged_every", l.interval.String())...)
		return
	}
	w.suppressed++
	w.lastSource = source
	if !w.flushing {
		w.flushing = true
		time.AfterFunc(w.until.Sub(now), func() { l.flush(kind) })
	}
	l.mu.Unlock()
}

// flush logs the summary of a kind's suppressed refusals and opens the
// next interval, so summaries too come at most once per interval.
func (l *logLimiter) flush(kind string) {
	l.mu.Lock()
	w := l.kinds[kind]
	n, src := w.suppressed, w.lastSource
	w.suppressed, w.flushing = 0, false
	w.until = time.Now().Add(l.interval)
	l.mu.Unlock()
	if n > 0 {
		l.log.Warn(fmt.Sprintf("webhook: %d more refusals suppressed", n), "kind", kind, "suppressed", n,
			"interval", l.interval.String(), "last_source", src)
	}
}
