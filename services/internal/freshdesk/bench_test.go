package freshdesk_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
)

// The benchmarks serve canned bodies from httptest over loopback.
// BenchmarkRawHTTPGet is the network-only baseline: the client's own cost is
// the difference between it and BenchmarkGetTicket / BenchmarkListPage.

func benchServer(b *testing.B, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Ratelimit-Total", "100000")
		w.Header().Set("X-Ratelimit-Remaining", "99999")
		w.Header().Set("X-Ratelimit-Used-CurrentRequest", "1")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchClient(b *testing.B, srv *httptest.Server) *freshdesk.Client {
	c, err := freshdesk.New(freshdesk.Config{APIKey: testKey, BaseURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkRawHTTPGet(b *testing.B) {
	srv := benchServer(b, fixture(b, "view_ticket_custom_fields.json"))
	hc := srv.Client()
	b.ReportAllocs()
	for b.Loop() {
		res, err := hc.Get(srv.URL + "/api/v2/tickets/14")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// BenchmarkDecodeTicket is the decode of a recorded 5.9 KB ticket view
// (with custom fields), the client's share of BenchmarkGetTicket.
func BenchmarkDecodeTicket(b *testing.B) {
	body := fixture(b, "view_ticket_custom_fields.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var t freshdesk.Ticket
		if err := json.Unmarshal(body, &t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetTicket(b *testing.B) {
	srv := benchServer(b, fixture(b, "view_ticket_custom_fields.json"))
	c := benchClient(b, srv)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ViewTicket(ctx, 14); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkListPage(b *testing.B) {
	// A full page: 100 tickets built from the recorded list fixture.
	one := strings.TrimSpace(string(fixture(b, "list_tickets_page1.json")))
	one = strings.TrimSuffix(strings.TrimPrefix(one, "["), "]")
	page := "[" + strings.Repeat(one+",", 9) + one + "]"
	srv := benchServer(b, []byte(page))
	c := benchClient(b, srv)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p, err := c.ListTickets(ctx, freshdesk.ListOptions{OrderBy: "updated_at", OrderType: "asc"})
		if err != nil || len(p.Tickets) != 100 {
			b.Fatal(err, len(p.Tickets))
		}
	}
}
