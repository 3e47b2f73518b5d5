package freshdesksim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkInProcess is the cost of a request without HTTP and network:
// routing and the middleware (auth, rate limit, faults, stats) on the
// cheapest endpoint, and the handlers of the HTTP benchmarks. It is steadier
// than those on a loaded machine.
func BenchmarkInProcess(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Generate(GenerateOptions{History: 2000, New: 500}); err != nil {
		b.Fatal(err)
	}
	gid, _ := s.GroupID("Billing")
	update := fmt.Sprintf(`{"group_id":%d,"type":"Question","priority":2,"tags":["autotriage"]}`, gid)
	for _, bc := range []struct{ name, method, path, body string }{
		{"route", "GET", "/api/v2/agents/me", ""},
		{"list", "GET", "/api/v2/tickets?updated_since=2000-01-01&order_by=updated_at&order_type=asc&per_page=30", ""},
		{"list_default", "GET", "/api/v2/tickets", ""},
		{"update", "PUT", "/api/v2/tickets/2001", update},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(bc.method, bc.path, strings.NewReader(bc.body))
				req.SetBasicAuth(adminKey, "X")
				if bc.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				w := httptest.NewRecorder()
				s.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
