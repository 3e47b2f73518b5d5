package freshdesk_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
)

// TestDefaultTransportReusesConnectionsUnderConcurrency: 16 callers making
// 20 calls each must not open a connection per call. With Go's default idle
// pool (2 per host) most calls would dial anew (against Freshdesk, a TLS
// handshake each).
func TestDefaultTransportReusesConnectionsUnderConcurrency(t *testing.T) {
	const workers, rounds = 16, 20
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Slow enough that the callers' requests overlap.
		time.Sleep(time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":1,"subject":"s","status":2,"priority":1,"source":2,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z","tags":[]}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	// The client under test is built without an HTTP client: the default.
	c, err := freshdesk.New(freshdesk.Config{APIKey: testKey, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if _, err := c.ViewTicket(context.Background(), 1); err != nil {
					t.Error(err)
					return
				}
				// A stage does other work between calls (KV, publish):
				// its connection sits idle meanwhile.
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if n := dials.Load(); n > 2*workers {
		t.Fatalf("%d connections for %d calls from %d concurrent callers; want at most %d (idle connections reused)", n, workers*rounds, workers, 2*workers)
	}
	t.Logf("%d connections for %d calls", dials.Load(), workers*rounds)
}
