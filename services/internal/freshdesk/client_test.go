package freshdesk_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

const ticketJSON = `{"id":14,"subject":"s","status":2,"priority":1,"source":3,"tags":["a"],"group_id":1080000528068,
"requester_id":50000009103717,"custom_fields":{"cf_x":1},"created_at":"2022-02-22T10:03:42Z","updated_at":"2022-02-22T18:13:11Z"}`

func TestRequestHeaders(t *testing.T) {
	var got http.Header
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		if r.URL.Path != "/api/v2/tickets/14" {
			t.Errorf("path %q", r.URL.Path)
		}
		io.WriteString(w, ticketJSON)
	}), func(c *freshdesk.Config) { c.UserAgent = "ua-test" })
	tk, err := c.ViewTicket(context.Background(), 14)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ID != 14 || *tk.GroupID != 1080000528068 || *tk.RequesterID != 50000009103717 {
		t.Errorf("decoded %+v", tk)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testKey+":X"))
	if got.Get("Authorization") != wantAuth {
		t.Errorf("Authorization = %q; want basic <key>:X", got.Get("Authorization"))
	}
	if got.Get("Accept") != "application/json" || got.Get("User-Agent") != "ua-test" {
		t.Errorf("headers %v", got)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := freshdesk.New(freshdesk.Config{Domain: "acme"}); err == nil {
		t.Error("New without key succeeded")
	}
	if _, err := freshdesk.New(freshdesk.Config{Domain: "ac/me", APIKey: "k"}); err == nil {
		t.Error("New with bad domain succeeded")
	}
	if _, err := freshdesk.New(freshdesk.Config{BaseURL: "https://u:p@h", APIKey: "k"}); err == nil {
		t.Error("New with credentials in base URL succeeded")
	}
	c, err := freshdesk.New(freshdesk.Config{Domain: "acme", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "https://acme.freshdesk.com" {
		t.Errorf("BaseURL = %q", c.BaseURL())
	}
}

func TestErrorClasses(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		header  map[string]string
		kind    error
		code    string
		fields  []ticketsystem.FieldError
		retryIn time.Duration
		msg     string
	}{
		{name: "validation", status: 400,
			body: `{"description":"Validation failed","errors":[{"field":"status","message":"Value set is of type String.It should be one of these values: '2,3,4,5,6,7'","code":"datatype_mismatch"},{"field":"type","message":"It should be one of these values: 'Question'","code":"invalid_value"}]}`,
			kind: ticketsystem.ErrValidation, msg: "Validation failed",
			fields: []ticketsystem.FieldError{
				{Field: "status", Code: "datatype_mismatch", Message: "Value set is of type String.It should be one of these values: '2,3,4,5,6,7'"},
				{Field: "type", Code: "invalid_value", Message: "It should be one of these values: 'Question'"}}},
		{name: "invalid_json", status: 400, body: `{"code":"invalid_json","message":"Request body has invalid json format"}`,
			kind: ticketsystem.ErrValidation, code: "invalid_json", msg: "Request body has invalid json format"},
		{name: "401", status: 401, body: `{"code":"invalid_credentials","message":"You have to be logged in to perform this action."}`,
			kind: ticketsystem.ErrAuth, code: "invalid_credentials"},
		{name: "403", status: 403, body: `{"code":"access_denied","message":"You are not authorized to perform this action."}`,
			kind: ticketsystem.ErrPermission, code: "access_denied"},
		{name: "404 empty", status: 404, kind: ticketsystem.ErrNotFound,
			header: map[string]string{"Content-Type": "application/json"}},
		{name: "405", status: 405, kind: ticketsystem.ErrGone},
		{name: "406", status: 406, kind: ticketsystem.ErrUnsupported},
		{name: "409", status: 409, body: `{"code":"duplicate_value","message":"dup"}`, kind: ticketsystem.ErrConflict, code: "duplicate_value"},
		{name: "415", status: 415, body: `{"code":"invalid_content_type","message":"Content-Type header is not supported"}`,
			kind: ticketsystem.ErrUnsupported, code: "invalid_content_type"},
		{name: "429 empty", status: 429, kind: ticketsystem.ErrRateLimited, retryIn: 7 * time.Second,
			header: map[string]string{"Retry-After": "7", "Content-Type": "application/json"}},
		{name: "500", status: 500, body: `{"code":"internal_error","message":"unexpected server error"}`,
			kind: ticketsystem.ErrTransient, code: "internal_error"},
		{name: "503 html", status: 503, body: `<html>down</html>`, kind: ticketsystem.ErrTransient, msg: "<html>down</html>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("X-Request-Id", "req-1")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}), func(c *freshdesk.Config) { c.MaxRetries = -1 })
			_, err := c.ViewTicket(context.Background(), 14)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v; want kind %v", err, tc.kind)
			}
			var te *ticketsystem.Error
			if !errors.As(err, &te) {
				t.Fatalf("not a *ticketsystem.Error: %T", err)
			}
			if te.Status != tc.status || te.Code != tc.code || te.RequestID != "req-1" {
				t.Errorf("status=%d code=%q request=%q", te.Status, te.Code, te.RequestID)
			}
			if tc.msg != "" && te.Message != tc.msg {
				t.Errorf("message = %q; want %q", te.Message, tc.msg)
			}
			if fmt.Sprint(te.Fields) != fmt.Sprint(tc.fields) {
				t.Errorf("fields = %v; want %v", te.Fields, tc.fields)
			}
			if te.RetryAfter != tc.retryIn {
				t.Errorf("RetryAfter = %v; want %v", te.RetryAfter, tc.retryIn)
			}
			if hits.Load() != 1 {
				t.Errorf("%d attempts with retries disabled", hits.Load())
			}
		})
	}
}

// statusSequence answers with the given statuses in turn, then 200 with body.
func statusSequence(hits *atomic.Int32, body string, statuses ...int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(hits.Add(1)) - 1
		if n < len(statuses) {
			if statuses[n] == 429 {
				w.Header().Set("Retry-After", "7")
			}
			w.WriteHeader(statuses[n])
			return
		}
		io.WriteString(w, body)
	})
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	var hits atomic.Int32
	c, sl, _ := newClient(t, statusSequence(&hits, ticketJSON, 429, 429))
	if _, err := c.ViewTicket(context.Background(), 14); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 3 {
		t.Fatalf("attempts = %d; want 3", hits.Load())
	}
	// The pacer may add its own wait for the window; each retry must wait
	// at least Retry-After before the next attempt.
	var total time.Duration
	for _, d := range sl.Sleeps() {
		total += d
	}
	if total < 14*time.Second {
		t.Fatalf("slept %v in total (%v); want >= 2 x Retry-After 7s", total, sl.Sleeps())
	}
	if sl.Sleeps()[0] != 7*time.Second {
		t.Fatalf("first wait %v; want Retry-After 7s", sl.Sleeps()[0])
	}
}

func TestRetry5xxWithJitteredBackoff(t *testing.T) {
	var hits atomic.Int32
	c, sl, _ := newClient(t, statusSequence(&hits, ticketJSON, 503, 502, 500), func(c *freshdesk.Config) {
		c.BackoffBase = time.Second
		c.BackoffMax = time.Minute
	})
	if _, err := c.ViewTicket(context.Background(), 14); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 4 {
		t.Fatalf("attempts = %d; want 4", hits.Load())
	}
	s := sl.Sleeps()
	if len(s) != 3 {
		t.Fatalf("sleeps %v; want 3", s)
	}
	for i, d := range s {
		lo, hi := time.Second<<i/2, time.Second<<i
		if d < lo || d > hi {
			t.Errorf("wait %d = %v; want in [%v, %v]", i, d, lo, hi)
		}
	}
}

func TestRetriesBounded(t *testing.T) {
	var hits atomic.Int32
	c, _, _ := newClient(t, statusSequence(&hits, ticketJSON, 500, 500, 500, 500, 500), func(c *freshdesk.Config) { c.MaxRetries = 2 })
	_, err := c.ViewTicket(context.Background(), 14)
	if !errors.Is(err, ticketsystem.ErrTransient) || hits.Load() != 3 {
		t.Fatalf("err=%v attempts=%d; want transient after 3", err, hits.Load())
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	for _, st := range []int{400, 401, 403, 404, 405, 409, 415} {
		var hits atomic.Int32
		c, _, _ := newClient(t, statusSequence(&hits, ticketJSON, st, st))
		if _, err := c.UpdateTicket(context.Background(), 1, freshdesk.TicketUpdate{Priority: ptr(2)}); err == nil {
			t.Errorf("%d: no error", st)
		}
		if hits.Load() != 1 {
			t.Errorf("%d: %d attempts; want 1", st, hits.Load())
		}
	}
}

func TestContextBoundsRetries(t *testing.T) {
	var hits atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	c, _, _ := newClient(t, statusSequence(&hits, ticketJSON, 500, 500, 500), func(c *freshdesk.Config) {
		c.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	})
	_, err := c.ViewTicket(ctx, 14)
	if !errors.Is(err, context.Canceled) || hits.Load() != 1 {
		t.Fatalf("err=%v attempts=%d; want context.Canceled after 1", err, hits.Load())
	}
}

// resetOnce aborts the first n connections with a TCP reset, after reading
// the request, then serves body.
func resetOnce(hits *atomic.Int32, n int32, status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if hits.Add(1) <= n {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func noKeepAlive(c *freshdesk.Config) {
	c.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestGetRetriedAfterConnectionReset(t *testing.T) {
	var hits atomic.Int32
	c, sl, _ := newClient(t, resetOnce(&hits, 2, 200, ticketJSON), noKeepAlive)
	if _, err := c.ViewTicket(context.Background(), 14); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 3 || len(sl.Sleeps()) != 2 {
		t.Fatalf("attempts=%d sleeps=%v; want 3 attempts, 2 waits", hits.Load(), sl.Sleeps())
	}
}

func TestNoteNotBlindlyRetried(t *testing.T) {
	note := `{"id":5,"body":"<div>x</div>","private":true,"source":2,"ticket_id":1}`
	t.Run("reset", func(t *testing.T) {
		var hits atomic.Int32
		c, _, _ := newClient(t, resetOnce(&hits, 1, 201, note), noKeepAlive)
		_, err := c.AddNote(context.Background(), 1, freshdesk.NewNote{Body: "<p>x</p>"})
		if !errors.Is(err, ticketsystem.ErrOutcomeUnknown) || !errors.Is(err, ticketsystem.ErrTransient) {
			t.Fatalf("err = %v; want outcome unknown (transient)", err)
		}
		if ticketsystem.IsRetryable(err) {
			t.Error("outcome-unknown error reported as blindly retryable")
		}
		if hits.Load() != 1 {
			t.Fatalf("attempts = %d; want 1", hits.Load())
		}
	})
	t.Run("500", func(t *testing.T) {
		var hits atomic.Int32
		c, _, _ := newClient(t, statusSequence(&hits, note, 500))
		_, err := c.AddNote(context.Background(), 1, freshdesk.NewNote{Body: "<p>x</p>"})
		if !errors.Is(err, ticketsystem.ErrOutcomeUnknown) || hits.Load() != 1 {
			t.Fatalf("err=%v attempts=%d; want outcome unknown after 1", err, hits.Load())
		}
	})
	t.Run("429 is retried", func(t *testing.T) {
		var hits atomic.Int32
		c, _, _ := newClient(t, statusSequence(&hits, note, 429))
		n, err := c.AddNote(context.Background(), 1, freshdesk.NewNote{Body: "<p>x</p>"})
		if err != nil || n.ID != 5 || hits.Load() != 2 {
			t.Fatalf("note=%v err=%v attempts=%d", n, err, hits.Load())
		}
	})
	t.Run("dial failure is retried", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens: connection refused
		sl := newSleeper()
		c, err := freshdesk.New(freshdesk.Config{APIKey: testKey, BaseURL: "http://" + addr, Sleep: sl.Sleep, Now: sl.Now, MaxRetries: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.AddNote(context.Background(), 1, freshdesk.NewNote{Body: "<p>x</p>"})
		if errors.Is(err, ticketsystem.ErrOutcomeUnknown) || !errors.Is(err, ticketsystem.ErrTransient) || len(sl.Sleeps()) != 2 {
			t.Fatalf("err=%v sleeps=%v; want transient after 2 retries", err, sl.Sleeps())
		}
	})
}

func TestNoteBodyPrivateByDefault(t *testing.T) {
	var got map[string]any
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/v2/tickets/9/notes" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(201)
		io.WriteString(w, `{"id":1,"ticket_id":9,"private":true}`)
	}))
	if _, err := c.AddNote(context.Background(), 9, freshdesk.NewNote{Body: "<p>hi</p>"}); err != nil {
		t.Fatal(err)
	}
	if got["private"] != true || got["body"] != "<p>hi</p>" || len(got) != 2 {
		t.Fatalf("note body %v; want body and private:true only", got)
	}
}

func TestResponseBodyLimit(t *testing.T) {
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte(" "), 4096))
	}), func(c *freshdesk.Config) { c.MaxResponseBytes = 1024 })
	_, err := c.ViewTicket(context.Background(), 1)
	if !errors.Is(err, ticketsystem.ErrInvalidResponse) || !strings.Contains(err.Error(), "1024-byte limit") {
		t.Fatalf("err = %v; want a size-limit error", err)
	}
}

func TestInvalidJSONResponse(t *testing.T) {
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"fourteen"}`)
	}))
	if _, err := c.ViewTicket(context.Background(), 1); !errors.Is(err, ticketsystem.ErrInvalidResponse) {
		t.Fatalf("err = %v; want ErrInvalidResponse", err)
	}
}

// budgetServer reports a per-minute budget that drops by the call cost.
func budgetServer(total int, remaining *atomic.Int32, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cost := int32(1)
		if strings.Contains(r.URL.RawQuery, "include=description") {
			cost = 3
		}
		rem := remaining.Add(-cost)
		w.Header().Set("X-Ratelimit-Total", fmt.Sprint(total))
		w.Header().Set("X-Ratelimit-Remaining", fmt.Sprint(rem))
		w.Header().Set("X-Ratelimit-Used-CurrentRequest", fmt.Sprint(cost))
		io.WriteString(w, body)
	})
}

func TestPacerKeepsReserve(t *testing.T) {
	var remaining atomic.Int32
	remaining.Store(7)
	reg := prometheus.NewRegistry()
	c, sl, _ := newClient(t, budgetServer(10, &remaining, ticketJSON), func(c *freshdesk.Config) {
		c.Reserve = 0.3 // 3 of 10 credits
		c.Registerer = reg
	})
	ctx := context.Background()
	for i := range 3 { // remaining after: 6, 5, 4
		if _, err := c.ViewTicket(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if len(sl.Sleeps()) != 0 {
			t.Fatalf("call %d waited %v with budget above the reserve", i, sl.Sleeps())
		}
	}
	rl := c.RateLimit()
	if !rl.Known || rl.Total != 10 || rl.Remaining != 4 || rl.Reserve != 3 || rl.UsedCurrentRequest != 1 {
		t.Fatalf("RateLimit() = %+v", rl)
	}
	if _, err := c.ViewTicket(ctx, 1); err != nil { // 4-1 = 3: still allowed
		t.Fatal(err)
	}
	if len(sl.Sleeps()) != 0 {
		t.Fatalf("waited %v before reaching the reserve", sl.Sleeps())
	}
	if _, err := c.ViewTicket(ctx, 1); err != nil { // 3-1 < 3: waits for the window
		t.Fatal(err)
	}
	s := sl.Sleeps()
	if len(s) != 1 || s[0] != time.Minute {
		t.Fatalf("waits %v; want one wait of a minute (window estimated from the first observation)", s)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "freshdesk_api_credits_spent_total")); got != 5 {
		t.Errorf("credits spent metric = %v; want 5", got)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "freshdesk_api_pacer_waits_total")); got != 1 {
		t.Errorf("pacer waits metric = %v; want 1", got)
	}
}

func TestPacerCountsIncludeCost(t *testing.T) {
	var remaining atomic.Int32
	remaining.Store(9)
	c, sl, _ := newClient(t, budgetServer(10, &remaining, `[]`), func(c *freshdesk.Config) { c.Reserve = 5 })
	ctx := context.Background()
	if _, err := c.ListTickets(ctx, freshdesk.ListOptions{}); err != nil { // 1 credit: 8 left
		t.Fatal(err)
	}
	// include=description costs 3: 8-3 = 5 is allowed, the next is not.
	opts := freshdesk.ListOptions{Include: []string{"description"}}
	if _, err := c.ListTickets(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if len(sl.Sleeps()) != 0 {
		t.Fatalf("waited early: %v", sl.Sleeps())
	}
	if _, err := c.ListTickets(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if len(sl.Sleeps()) != 1 {
		t.Fatalf("waits %v; want one before spending into the reserve", sl.Sleeps())
	}
}

func TestPacerBoundedByContext(t *testing.T) {
	var remaining atomic.Int32
	remaining.Store(1)
	c, _, _ := newClient(t, budgetServer(10, &remaining, ticketJSON), func(c *freshdesk.Config) {
		c.Sleep = func(ctx context.Context, d time.Duration) error { <-ctx.Done(); return ctx.Err() }
	})
	if _, err := c.ViewTicket(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.ViewTicket(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want the context's deadline while waiting for budget", err)
	}
}

func TestRateLimitedMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	var hits atomic.Int32
	c, _, _ := newClient(t, statusSequence(&hits, ticketJSON, 429), func(c *freshdesk.Config) { c.Registerer = reg })
	if _, err := c.ViewTicket(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "freshdesk_api_rate_limited_total")); got != 1 {
		t.Errorf("rate limited = %v; want 1", got)
	}
	if _, err := freshdesk.New(freshdesk.Config{APIKey: "k", Domain: "a", Registerer: reg}); err == nil {
		t.Error("registering twice in one registry succeeded")
	}
}

func TestLongRetryAfterReturnedToCaller(t *testing.T) {
	var hits atomic.Int32
	c, sl, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(429)
	}))
	_, err := c.ViewTicket(context.Background(), 1)
	d, ok := ticketsystem.RetryAfter(err)
	if !ok || d != time.Hour || hits.Load() != 1 || len(sl.Sleeps()) != 0 {
		t.Fatalf("err=%v retryAfter=%v attempts=%d sleeps=%v", err, d, hits.Load(), sl.Sleeps())
	}
}

// mustCounter finds a metric collector by name in reg via Gather.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := 0.0
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			g.Set(v)
			return g
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func TestSecretNeverLeaks(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var hits atomic.Int32
	c, _, srv := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(500) // a server that echoes the key in its error text
		io.WriteString(w, `{"code":"boom","message":"bad key `+testKey+`"}`)
	}), func(c *freshdesk.Config) { c.Logger = logger; c.MaxRetries = 2 })
	cfg := freshdesk.Config{APIKey: testKey, BaseURL: srv.URL, Logger: logger}
	_, err := c.ViewTicket(context.Background(), 1)
	if err == nil {
		t.Fatal("no error")
	}
	logger.Info("config", "cfg", cfg, "key", cfg.APIKey)
	js, err2 := json.Marshal(struct{ Key freshdesk.Secret }{cfg.APIKey})
	if err2 != nil || !strings.Contains(string(js), "redacted") {
		t.Fatalf("marshal secret: %s, %v", js, err2)
	}
	var outputs []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs = append(outputs, fmt.Sprintf(f, cfg), fmt.Sprintf(f, cfg.APIKey), fmt.Sprintf(f, &cfg), fmt.Sprintf(f, c))
	}
	outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err), logs.String(), string(js), cfg.APIKey.String())
	hexKey := fmt.Sprintf("%x", testKey)
	for _, o := range outputs {
		if strings.Contains(o, testKey) || strings.Contains(strings.ToLower(o), hexKey) ||
			strings.Contains(o, base64.StdEncoding.EncodeToString([]byte(testKey+":X"))) {
			t.Fatalf("API key leaked in %q", o)
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("expected retry logs to check, got %q", logs.String())
	}
}

func TestUnknownStatusOn1xxOr3xx(t *testing.T) {
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(304) }))
	if _, err := c.ViewTicket(context.Background(), 1); !errors.Is(err, ticketsystem.ErrInvalidResponse) {
		t.Fatalf("err = %v", err)
	}
}
