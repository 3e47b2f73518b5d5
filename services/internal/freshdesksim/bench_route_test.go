package freshdesksim

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRouting is the per-request cost of routing and the middleware
// (auth, rate limit, faults, stats) in process, on the cheapest endpoint.
func BenchmarkRouting(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	req := httptest.NewRequest("GET", "/api/v2/agents/me", nil)
	req.SetBasicAuth(adminKey, "X")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
