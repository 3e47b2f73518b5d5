package freshdesk_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
)

const testKey = "k3y-Sup3rS3cr3t-abcdef"

// sleeper records requested waits instead of sleeping, and advances a fake
// clock by them, so tests assert on waits without wall-clock time.
type sleeper struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newSleeper() *sleeper { return &sleeper{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (s *sleeper) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sleeps = append(s.sleeps, d)
	s.now = s.now.Add(d)
	return nil
}

func (s *sleeper) Sleeps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.sleeps...)
}

// newClient starts an httptest server with h and a client pointed at it.
// mutate may adjust the config.
func newClient(t *testing.T, h http.Handler, mutate ...func(*freshdesk.Config)) (*freshdesk.Client, *sleeper, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	sl := newSleeper()
	cfg := freshdesk.Config{
		APIKey:     testKey,
		BaseURL:    srv.URL,
		Now:        sl.Now,
		Sleep:      sl.Sleep,
		HTTPClient: srv.Client(),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := freshdesk.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, sl, srv
}

// sharedDir returns the shared read-only material, or skips.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("AUTOTRIAGE_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "fixtures", "freshdesk")); err != nil {
		t.Skipf("shared fixtures not available at %s (set AUTOTRIAGE_SHARED): %v", dir, err)
	}
	return dir
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "fixtures", "freshdesk", name))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }
