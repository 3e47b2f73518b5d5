package freshdesksim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sharedDir finds the shared material: $AUTOTRIAGE_SHARED, or a "shared"
// folder beside one of the parent folders. Tests needing it skip without it.
func sharedDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("AUTOTRIAGE_SHARED"); d != "" {
		return d
	}
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		c := filepath.Join(d, "shared")
		if st, err := os.Stat(filepath.Join(c, "fixtures", "freshdesk")); err == nil && st.IsDir() {
			return c
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	t.Skip("shared/ not found (set AUTOTRIAGE_SHARED)")
	return ""
}

// fakeClock is a settable simulated clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	sim   *Sim
	srv   *httptest.Server
	clock *fakeClock
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	clock := newFakeClock()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.Close()
		_ = s.Close()
	})
	return &env{t: t, sim: s, srv: srv, clock: clock}
}

const adminKey, agentKey = "sim-admin-key", "sim-agent-key"

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) json(t testing.TB) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, r.body)
	}
	return v
}

func (e *env) do(method, path, key, body string) result {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth(key, "X")
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) result {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, b}
}

func (e *env) get(path string) result { return e.do(http.MethodGet, path, adminKey, "") }

// ids extracts the "id" of each object of a JSON array.
func ids(t testing.TB, body []byte) []int64 {
	t.Helper()
	var arr []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &arr); err != nil {
		t.Fatalf("not an array of objects: %v: %s", err, body)
	}
	out := make([]int64, len(arr))
	for i, a := range arr {
		out[i] = a.ID
	}
	return out
}

// eventually polls cond until it holds or a generous deadline passes. It
// asserts an outcome, not a duration.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
