package fetcher

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// logBuf collects a logger's JSON lines; the handler and the summary timer
// write from several goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the decoded log lines whose message contains substr.
func (l *logBuf) records(t *testing.T, substr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, substr) {
			out = append(out, rec)
		}
	}
	return out
}

type guardedEnv struct {
	*webhookEnv
	reg  *prometheus.Registry // the fetcher's own series
	logs *logBuf
	h    http.Handler
}

// startGuarded is startWebhook with the fetcher's metrics and log captured.
func startGuarded(t *testing.T, cfg Config) *guardedEnv {
	t.Helper()
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{New: 12})
	reg := prometheus.NewRegistry()
	logs := &logBuf{}
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter, catalog: s.adapter, reg: reg,
		log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h := f.WebhookHandler()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &guardedEnv{webhookEnv: &webhookEnv{b: b, s: s, f: f, url: hs.URL + WebhookPath}, reg: reg, logs: logs, h: h}
}

func (e *guardedEnv) refused(t *testing.T, reason string) int {
	t.Helper()
	n, ok := gathered(t, e.reg, "autotriage_fetcher_webhook_refused_total", map[string]string{"reason": reason})
	if !ok {
		t.Fatalf("autotriage_fetcher_webhook_refused_total{reason=%q} does not exist", reason)
	}
	return int(n)
}

// call serves one request from remote (host:port) in process, so the
// source address can be chosen.
func call(h http.Handler, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, WebhookPath, strings.NewReader(`{"freshdesk_webhook":{"ticket_id":"11"}}`))
	req.RemoteAddr = remote
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestWebhookAuthFailuresCountedAndLoggedOncePerInterval(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookLogInterval = time.Hour
	e := startGuarded(t, cfg)
	const presented = "presented-wrong-secret-3f9a"
	body := fixture(t, "webhook_ticket_created.json")
	for i := range 50 {
		hdr := map[string]string{"X-Autotriage-Token": presented}
		if i%2 == 1 {
			hdr = nil
		}
		if r := post(t, e.url, body, hdr); r.code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d, want 401", i, r.code)
		}
	}
	if bad, missing := e.refused(t, RefusedBadAuth), e.refused(t, RefusedMissingAuth); bad != 25 || missing != 25 {
		t.Fatalf("refused bad_credentials=%d missing_credentials=%d, want 25 and 25", bad, missing)
	}
	if n, _ := gathered(t, e.reg, "autotriage_fetcher_webhook_requests_total", map[string]string{"code": "401"}); n != 50 {
		t.Fatalf("webhook_requests_total{code=401} = %v, want 50", n)
	}
	recs := e.logs.records(t, "webhook refused")
	if len(recs) != 1 {
		t.Fatalf("%d refusal log lines for 50 refusals within one interval, want 1:\n%s", len(recs), e.logs)
	}
	if recs[0]["reason"] != RefusedBadAuth || recs[0]["source"] != "127.0.0.1" {
		t.Fatalf("refusal line %v", recs[0])
	}
	if strings.Contains(e.logs.String(), presented) || strings.Contains(e.logs.String(), testSecret) {
		t.Fatalf("a secret reached the log:\n%s", e.logs)
	}
	// The endpoint still serves the right credentials.
	if r := post(t, e.url, body, authed); r.code != http.StatusAccepted {
		t.Fatalf("authenticated after the failures: %d %+v", r.code, r.body)
	}
}

// Over several intervals every refusal is either logged or counted in a
// summary line: none vanishes, and a flood costs a line per interval.
func TestWebhookRefusalSummaries(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookLogInterval = 20 * time.Millisecond
	e := startGuarded(t, cfg)
	const sent = 40
	for range sent {
		if rec := call(e.h, "192.0.2.1:4000", map[string]string{"X-Autotriage-Token": "nope"}); rec.Code != http.StatusUnauthorized {
			t.Fatalf("%d, want 401", rec.Code)
		}
	}
	accounted := func() (full, suppressed int) {
		full = len(e.logs.records(t, "webhook refused"))
		for _, r := range e.logs.records(t, "refusals suppressed") {
			n, _ := r["suppressed"].(float64)
			if r["kind"] != "auth" || r["last_source"] != "192.0.2.1" || n < 1 {
				t.Fatalf("summary line %v", r)
			}
			suppressed += int(n)
		}
		return full, suppressed
	}
	waitFor(t, "every refusal logged or summarised", func() bool {
		full, suppressed := accounted()
		return full+suppressed == sent
	})
	if full, suppressed := accounted(); full < 1 || suppressed < 1 {
		t.Fatalf("%d full lines, %d suppressed; want both", full, suppressed)
	}
}

func TestWebhookAllowList(t *testing.T) {
	t.Run("over TCP", func(t *testing.T) {
		cfg := testConfig()
		cfg.WebhookAllow = "10.0.0.0/8, 192.0.2.1"
		e := startGuarded(t, cfg)
		body := fixture(t, "webhook_ticket_created.json")
		for range 3 {
			if r := post(t, e.url, body, authed); r.code != http.StatusForbidden {
				t.Fatalf("127.0.0.1 outside the allow list: %d %+v, want 403", r.code, r.body)
			}
		}
		if n := e.b.count(t, pipeline.StreamTickets) + e.b.count(t, pipeline.StreamDLQ); n != 0 {
			t.Fatalf("refused sources stored %d messages", n)
		}
		if n := e.refused(t, RefusedSource); n != 3 {
			t.Fatalf("refused{source_not_allowed} = %d, want 3", n)
		}
		if recs := e.logs.records(t, "webhook refused"); len(recs) != 1 || recs[0]["reason"] != RefusedSource {
			t.Fatalf("log lines %v, want one source refusal", recs)
		}
	})
	t.Run("loopback allowed", func(t *testing.T) {
		cfg := testConfig()
		cfg.WebhookAllow = "127.0.0.0/8"
		e := startGuarded(t, cfg)
		if r := post(t, e.url, fixture(t, "webhook_ticket_created.json"), authed); r.code != http.StatusAccepted {
			t.Fatalf("allowed source: %d %+v, want 202", r.code, r.body)
		}
	})
	t.Run("by peer address", func(t *testing.T) {
		cfg := testConfig()
		cfg.WebhookAllow = "192.0.2.0/24,2001:db8::1"
		e := startGuarded(t, cfg)
		for remote, want := range map[string]int{
			// Past the allow list, stopped by authentication (no credentials).
			"192.0.2.9:1234":         http.StatusUnauthorized,
			"[2001:db8::1]:443":      http.StatusUnauthorized,
			"[::ffff:192.0.2.7]:443": http.StatusUnauthorized,
			"198.51.100.1:1234":      http.StatusForbidden,
			"[2001:db8::2]:443":      http.StatusForbidden,
			"garbage":                http.StatusForbidden,
		} {
			if rec := call(e.h, remote, nil); rec.Code != want {
				t.Errorf("from %s: %d, want %d", remote, rec.Code, want)
			}
		}
	})
}

// X-Forwarded-For names the source only when the TCP peer is a trusted
// proxy, and only up to the first hop that is not one.
func TestWebhookTrustedProxies(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookAllow = "192.0.2.0/24"
	cfg.WebhookTrustedProxies = "10.0.0.0/8"
	e := startGuarded(t, cfg)
	for _, tc := range []struct {
		peer, xff string
		want      int
	}{
		{"10.1.1.1:5000", "192.0.2.5", http.StatusUnauthorized},
		{"10.1.1.1:5000", "198.51.100.9, 192.0.2.5, 10.2.2.2", http.StatusUnauthorized}, // the client's own hop is not believed
		{"10.1.1.1:5000", "192.0.2.5, 198.51.100.7", http.StatusForbidden},              // rightmost untrusted hop
		{"198.51.100.7:5000", "192.0.2.5", http.StatusForbidden},                        // not a proxy: header ignored
		{"10.1.1.1:5000", "", http.StatusForbidden},                                     // the proxy itself
		{"10.1.1.1:5000", "192.0.2.5, not-an-ip", http.StatusForbidden},                 // garbled: stops at the proxy
	} {
		hdr := map[string]string{}
		if tc.xff != "" {
			hdr["X-Forwarded-For"] = tc.xff
		}
		if rec := call(e.h, tc.peer, hdr); rec.Code != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %d, want %d", tc.peer, tc.xff, rec.Code, tc.want)
		}
	}
	// Without trusted proxies the header is never read.
	cfg.WebhookTrustedProxies = ""
	e = startGuarded(t, cfg)
	if rec := call(e.h, "10.1.1.1:5000", map[string]string{"X-Forwarded-For": "192.0.2.5"}); rec.Code != http.StatusForbidden {
		t.Errorf("no trusted proxies, forged X-Forwarded-For: %d, want 403", rec.Code)
	}
}

// The rate limit comes before authentication: past the burst even the
// right secret gets 429, and wrong guesses are no longer checked.
func TestWebhookRateLimitBeforeAuth(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookRate = 0.01 // a token per 100 s: none comes back during the test
	cfg.WebhookBurst = 5
	e := startGuarded(t, cfg)
	body := fixture(t, "webhook_ticket_created.json")
	wrong := map[string]string{"X-Autotriage-Token": "guess-0000000000000"}
	for i := range 5 {
		if r := post(t, e.url, body, wrong); r.code != http.StatusUnauthorized {
			t.Fatalf("guess %d within the burst: %d, want 401", i, r.code)
		}
	}
	for i := range 10 {
		req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
		req.Header.Set("X-Autotriage-Token", "guess-0000000000000")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("guess %d past the burst: %d, want 429", i, res.StatusCode)
		}
		if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 100 {
			t.Fatalf("Retry-After %q, want 1..100 seconds", res.Header.Get("Retry-After"))
		}
	}
	if r := post(t, e.url, body, authed); r.code != http.StatusTooManyRequests {
		t.Fatalf("right secret past the burst: %d, want 429", r.code)
	}
	if bad, limited := e.refused(t, RefusedBadAuth), e.refused(t, RefusedRateLimited); bad != 5 || limited != 11 {
		t.Fatalf("bad_credentials=%d rate_limited=%d, want 5 (later guesses not checked) and 11", bad, limited)
	}
	if n := e.b.count(t, pipeline.StreamTickets); n != 0 {
		t.Fatalf("%d tickets published", n)
	}
	// Another source has its own bucket.
	if rec := call(e.h, "192.0.2.1:4000", authed); rec.Code != http.StatusAccepted {
		t.Fatalf("another source: %d %s, want 202", rec.Code, rec.Body)
	}
}

// However many addresses a flood comes from, at most
// AUTOTRIAGE_WEBHOOK_MAX_SOURCES have their own bucket; the others share
// one, so the flood is throttled as one source.
func TestWebhookSourceMapBounded(t *testing.T) {
	cfg := testConfig()
	cfg.WebhookRate = 0.01
	cfg.WebhookBurst = 2
	cfg.WebhookMaxSources = 8
	e := startGuarded(t, cfg)
	codes := map[int]int{}
	for i := range 1000 {
		rec := call(e.h, fmt.Sprintf("198.51.%d.%d:1000", i/250, i%250+1), nil)
		codes[rec.Code]++
		if n := e.f.guard.limits.tracked(); n > 8 {
			t.Fatalf("after %d sources %d are tracked, want at most 8", i+1, n)
		}
	}
	// 8 tracked sources pass to authentication, as do the shared bucket's
	// 2 tokens; the other 990 new sources are throttled together.
	if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 990 {
		t.Fatalf("codes %v, want 10 x 401 and 990 x 429", codes)
	}
	if n, _ := gathered(t, e.reg, "autotriage_fetcher_webhook_sources", nil); n != 8 {
		t.Fatalf("autotriage_fetcher_webhook_sources = %v, want 8", n)
	}
}

func TestSourceLimiter(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	l := newSourceLimiter(1, 2, 3) // refills in 2 s
	for _, s := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if ok, _ := l.allow(a(s), t0); !ok {
			t.Fatalf("%s refused on its first request", s)
		}
	}
	// Full: a fourth source uses the shared bucket and is not tracked.
	if ok, _ := l.allow(a("192.0.2.4"), t0.Add(time.Second)); !ok || l.tracked() != 3 {
		t.Fatalf("fourth source: ok %v, tracked %d", ok, l.tracked())
	}
	// Once their buckets have refilled, idle sources are dropped (a full
	// bucket behaves like a new one) and new sources are tracked again.
	if ok, _ := l.allow(a("192.0.2.5"), t0.Add(2*time.Second)); !ok || l.tracked() != 1 {
		t.Fatalf("after the idle sweep: ok %v, tracked %d, want 1", ok, l.tracked())
	}
	// Addresses of one IPv6 /64 share a bucket; another /64 has its own.
	l = newSourceLimiter(1, 2, 100)
	results := []bool{}
	for _, s := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::3", "2001:db8:0:2::1"} {
		ok, wait := l.allow(a(s), t0)
		results = append(results, ok)
		if !ok && (wait <= 0 || wait > time.Second) {
			t.Fatalf("wait %v, want (0, 1s]", wait)
		}
	}
	if fmt.Sprint(results) != "[true true false true]" || l.tracked() != 2 {
		t.Fatalf("results %v, tracked %d; want [true true false true], 2", results, l.tracked())
	}
}
