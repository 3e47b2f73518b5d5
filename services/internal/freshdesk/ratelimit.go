package freshdesk

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rateWindow is Freshdesk's budget window: limits are per minute.
const rateWindow = time.Minute

// RateLimit is a snapshot of the account's API budget as last reported by
// the X-RateLimit-* headers.
type RateLimit struct {
	// Known is false until a response carried the headers, and again once
	// the estimated window has ended.
	Known bool
	// Total is the per-minute allowance (X-RateLimit-Total).
	Total int
	// Remaining is the budget left in the window: the last reported value
	// minus the credits of calls started since.
	Remaining int
	// UsedCurrentRequest is what the last call cost.
	UsedCurrentRequest int
	// Reserve is the budget this client leaves to others, in credits.
	Reserve int
	// ResetAt estimates when the window ends: one minute after the first
	// observation in the window, or now+Retry-After after a 429.
	ResetAt time.Time
}

// RateLimit returns the current rate-limit snapshot.
func (c *Client) RateLimit() RateLimit { return c.pacer.snapshot() }

// pacer keeps calls from eating into the reserve: when a call's expected cost
// would take Remaining below the reserve, it waits for the window to reset.
type pacer struct {
	mu           sync.Mutex
	now          func() time.Time
	reserve      float64
	known        bool
	total        int
	remaining    int
	lastReported int
	usedLast     int
	resetAt      time.Time
}

func newPacer(reserve float64, now func() time.Time) *pacer {
	return &pacer{reserve: reserve, now: now}
}

// reserveCredits converts the configured reserve to credits (lock held).
func (p *pacer) reserveCredits() int {
	if p.reserve <= 0 {
		return 0
	}
	if p.reserve < 1 {
		return int(math.Ceil(p.reserve * float64(p.total)))
	}
	return int(p.reserve)
}

// expire forgets a window that has ended (lock held).
func (p *pacer) expire(now time.Time) {
	if p.known && !now.Before(p.resetAt) {
		p.known = false
		p.remaining = p.total
	}
}

// wait blocks until cost credits can be spent without touching the reserve,
// then books them. It returns ctx's error if ctx ends first.
func (p *pacer) wait(ctx context.Context, cost int, sleep func(context.Context, time.Duration) error, m *metrics) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.mu.Lock()
		now := p.now()
		p.expire(now)
		var d time.Duration
		if p.known && p.remaining-cost < p.reserveCredits() {
			d = p.resetAt.Sub(now)
		}
		if d <= 0 {
			if p.known {
				p.remaining -= cost
			}
			p.mu.Unlock()
			return nil
		}
		target := p.resetAt
		p.mu.Unlock()
		m.pacerWaits.Inc()
		m.pacerWaitSeconds.Add(d.Seconds())
		if err := sleep(ctx, d); err != nil {
			return err
		}
		// The wait lasted until the estimated reset, so that window is over
		// unless a 429 moved the reset later in the meantime.
		p.mu.Lock()
		if p.resetAt.Equal(target) {
			p.known = false
			p.remaining = p.total
		}
		p.mu.Unlock()
	}
}

// observe records one response's headers.
func (p *pacer) observe(total, remaining, used int, totalKnown bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.expire(now)
	if totalKnown {
		p.total = total
	} else if p.total < remaining {
		p.total = remaining
	}
	// A new window starts at the first observation or when the server's
	// budget went up (it refilled).
	if !p.known || remaining > p.lastReported {
		p.resetAt = now.Add(rateWindow)
	}
	p.known = true
	p.lastReported = remaining
	p.remaining = remaining
	p.usedLast = used
}

// missingRetryAfter is the pause after a 429 that names none. Freshdesk
// always sends Retry-After; a proxy in between may not, and stalling every
// call of the process for a whole minute on its account would be worse than
// asking again a little later (a further 429 extends the pause).
const missingRetryAfter = 5 * time.Second

// throttled records a 429: the budget is spent until Retry-After.
func (p *pacer) throttled(retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if retryAfter <= 0 {
		retryAfter = missingRetryAfter
	}
	p.known = true
	p.remaining = 0
	p.lastReported = 0
	p.resetAt = now.Add(retryAfter)
}

func (p *pacer) snapshot() RateLimit {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(p.now())
	return RateLimit{Known: p.known, Total: p.total, Remaining: p.remaining,
		UsedCurrentRequest: p.usedLast, Reserve: p.reserveCredits(), ResetAt: p.resetAt}
}

// metrics are the client's Prometheus instruments. They exist (and count)
// even when no Registerer is configured.
type metrics struct {
	requests         *prometheus.CounterVec
	requestsMu       sync.RWMutex
	requestsByCode   map[requestKey]prometheus.Counter // children of requests
	oversized        *prometheus.CounterVec            // by endpoint
	retries          *prometheus.CounterVec
	credits          prometheus.Counter
	rateLimited      prometheus.Counter
	pacerWaits       prometheus.Counter
	pacerWaitSeconds prometheus.Counter
	limitTotal       prometheus.Gauge
	limitRemaining   prometheus.Gauge
	duration         prometheus.Histogram
}

// requestKey identifies a child of the requests counter; code 0 is a
// transport error.
type requestKey struct {
	endpoint string
	code     int
}

// request returns the requests counter for endpoint and status code,
// caching the child so the hot path skips label hashing and formatting.
func (m *metrics) request(endpoint string, code int) prometheus.Counter {
	k := requestKey{endpoint, code}
	m.requestsMu.RLock()
	c, ok := m.requestsByCode[k]
	m.requestsMu.RUnlock()
	if ok {
		return c
	}
	label := "error"
	if code > 0 {
		label = strconv.Itoa(code)
	}
	c = m.requests.WithLabelValues(endpoint, label)
	// An endpoint in use has its retries series from its first request, at
	// zero, so a per-endpoint retry rate reads 0 rather than "no data".
	m.retries.WithLabelValues(endpoint)
	m.requestsMu.Lock()
	m.requestsByCode[k] = c
	m.requestsMu.Unlock()
	return c
}

func newMetrics() *metrics {
	return &metrics{
		requestsByCode: map[requestKey]prometheus.Counter{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshdesk_api_requests_total",
			Help: "HTTP attempts to the Freshdesk API by endpoint and status code (\"error\" for transport failures).",
		}, []string{"endpoint", "code"}),
		oversized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshdesk_api_oversized_responses_total",
			Help: "Responses larger than the client's response size limit (not decoded), by endpoint.",
		}, []string{"endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshdesk_api_retries_total",
			Help: "Retried Freshdesk API attempts by endpoint.",
		}, []string{"endpoint"}),
		credits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshdesk_api_credits_spent_total",
			Help: "API credits spent, from X-RateLimit-Used-CurrentRequest.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshdesk_api_rate_limited_total",
			Help: "Responses with status 429.",
		}),
		pacerWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshdesk_api_pacer_waits_total",
			Help: "Calls that waited for the rate-limit window to reset to keep the reserve.",
		}),
		pacerWaitSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshdesk_api_pacer_wait_seconds_total",
			Help: "Time spent waiting for the rate-limit window to keep the reserve.",
		}),
		limitTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "freshdesk_api_ratelimit_total",
			Help: "Per-minute API budget (X-RateLimit-Total).",
		}),
		limitRemaining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "freshdesk_api_ratelimit_remaining",
			Help: "API budget left in the current minute (X-RateLimit-Remaining).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "freshdesk_api_request_duration_seconds",
			Help:    "Duration of single HTTP attempts to the Freshdesk API.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 9),
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.oversized, m.retries, m.credits, m.rateLimited,
		m.pacerWaits, m.pacerWaitSeconds, m.limitTotal, m.limitRemaining, m.duration} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
