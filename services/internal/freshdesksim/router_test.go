package freshdesksim

import (
	"net/http"
	"testing"
)

// TestRoutingShapes pins how requests that match no handler are answered:
// Freshdesk's empty-bodied JSON 404 and 405 (with an Allow header), never
// net/http.ServeMux's plain-text defaults or its redirects for trailing
// slashes and uncleaned paths, and auth and rate limiting before any of it.
func TestRoutingShapes(t *testing.T) {
	e := newEnv(t, Config{})
	if _, err := e.sim.AddTicket(NewTicket{Subject: "s", Description: "d", Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, key string
		status            int
		allow             string
		ep                string // stats endpoint the request counts against
	}{
		{"DELETE", "/api/v2/tickets", adminKey, 405, "GET, POST", "tickets.list"},
		{"HEAD", "/api/v2/tickets", adminKey, 405, "GET, POST", "tickets.list"},
		{"PATCH", "/api/v2/tickets/1", adminKey, 405, "GET, PUT", "tickets.view"},
		{"HEAD", "/api/v2/tickets/1", adminKey, 405, "GET, PUT", "tickets.view"},
		{"GET", "/api/v2/tickets/1/notes", adminKey, 405, "POST", "tickets.notes"},
		{"POST", "/api/v2/tickets/1/conversations", adminKey, 405, "GET", "tickets.conversations"},
		{"POST", "/api/v2/search/tickets", adminKey, 405, "GET", "search"},
		{"PUT", "/api/v2/groups/1", adminKey, 405, "GET", "groups"},
		{"POST", "/api/v2/agents/me", adminKey, 405, "GET", "agents"},
		{"DELETE", "/api/v2/agents/1", adminKey, 405, "GET", "agents"},
		{"POST", "/api/v2/ticket_fields", adminKey, 405, "GET", "ticket_fields"},
		{"GET", "/api/v2/tickets/", adminKey, 404, "", "tickets.view"},
		{"GET", "/api/v2/tickets/abc", adminKey, 404, "", "tickets.view"},
		{"PUT", "/api/v2/tickets/0", adminKey, 404, "", "tickets.view"},
		{"GET", "/api/v2/tickets/-3", adminKey, 404, "", "tickets.view"},
		{"POST", "/api/v2/tickets/x/notes", adminKey, 404, "", "tickets.notes"},
		{"GET", "/api/v2/tickets/x/conversations", adminKey, 404, "", "tickets.conversations"},
		{"GET", "/api/v2/groups/x", adminKey, 404, "", "groups"},
		{"GET", "/api/v2/agents/x", adminKey, 404, "", "agents"},
		{"GET", "/api/v2/groups/", adminKey, 404, "", "groups"},
		{"GET", "/api/v2/tickets/1/", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/groups", adminKey, 200, "", "groups"},
		{"GET", "/api/v2//tickets", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/tickets/../groups", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/./tickets", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/tickets/1/notes/2", adminKey, 404, "", "unknown"},
		{"POST", "/api/v2/tickets//notes", adminKey, 404, "", "tickets.notes"},
		{"POST", "/api/v2/tickets/./notes", adminKey, 404, "", "tickets.notes"},
		{"GET", "/api/v2/tickets/../conversations", adminKey, 404, "", "tickets.conversations"},
		{"GET", "/api/v2/tickets/..", adminKey, 404, "", "tickets.view"},
		{"GET", "/api/v2/tickets/%2E%2E", adminKey, 404, "", "tickets.view"},
		{"GET", "/api/v2/groups/.", adminKey, 404, "", "groups"},
		{"GET", "/api/v2/tickets//", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/tickets/1%2F2", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/tickets/1%2Fnotes", adminKey, 405, "POST", "tickets.notes"},
		{"GET", "/api/v2/tickets/%31", adminKey, 200, "", "tickets.view"},
		{"GET", "/api/v2/ticket%5Ffields", adminKey, 200, "", "ticket_fields"},
		{"GET", "/api/v2/agents/me", adminKey, 200, "", "agents"},
		{"HEAD", "/api/v2/agents/me", adminKey, 405, "GET", "agents"},
		{"GET", "/api/v2/agents/0", adminKey, 404, "", "agents"},
		{"OPTIONS", "/api/v2/tickets/1/conversations", adminKey, 405, "GET", "tickets.conversations"},
		{"GET", "/api/v2/search", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/search/contacts", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2", adminKey, 404, "", "unknown"},
		{"GET", "/api/v2/", adminKey, 404, "", "unknown"},
		{"GET", "/api/v1/tickets", adminKey, 404, "", "unknown"},
		{"GET", "/", adminKey, 404, "", "unknown"},
		{"GET", "/_sim", adminKey, 404, "", "unknown"},
		{"DELETE", "/api/v2/tickets", "", 401, "", "tickets.list"},
		{"GET", "/api/v2/nothing", "", 401, "", "unknown"},
		{"GET", "/_sim", "", 401, "", "unknown"},
		{"GET", "/api/v2/tickets/", "", 401, "", "tickets.view"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+tc.key, func(t *testing.T) {
			e.sim.ResetStats()
			r := e.do(tc.method, tc.path, tc.key, "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (body %q, location %q)", r.status, tc.status, r.body, r.header.Get("Location"))
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
			if tc.status != 200 {
				if tc.status != 401 && len(r.body) != 0 {
					t.Fatalf("body %q, want empty", r.body)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Fatalf("Content-Type %q", ct)
				}
			}
			for _, h := range []string{"X-RateLimit-Total", "X-RateLimit-Remaining", "X-RateLimit-Used-CurrentRequest", "X-Request-Id"} {
				if r.header.Get(h) == "" {
					t.Fatalf("no %s header", h)
				}
			}
			st := e.sim.Stats()
			if st.Endpoints[tc.ep].Calls != 1 || st.Total.Calls != 1 {
				t.Fatalf("stats %+v, want one call on %q", st.Endpoints, tc.ep)
			}
		})
	}
}

// TestRoutingFaultsAndLimits pins that fault injection and rate limiting run
// for requests no handler answers, with the endpoint they were routed to.
func TestRoutingFaultsAndLimits(t *testing.T) {
	e := newEnv(t, Config{})
	e.sim.SetFault("tickets.view", Fault{Burst: 1, Status: 503})
	if r := e.get("/api/v2/tickets/abc"); r.status != 503 {
		t.Fatalf("fault on tickets.view: status %d", r.status)
	}
	if r := e.get("/api/v2/tickets/abc"); r.status != 404 {
		t.Fatalf("after the burst: status %d", r.status)
	}
	e.sim.SetFault("*", Fault{Burst: 1, Status: 502})
	if r := e.do("DELETE", "/api/v2/nothing", adminKey, ""); r.status != 502 {
		t.Fatalf("fault on *: status %d", r.status)
	}
	// A list with includes costs 3 credits even when the method is refused.
	r := e.do("DELETE", "/api/v2/tickets?include=stats", adminKey, "")
	if r.status != 405 || r.header.Get("X-RateLimit-Used-CurrentRequest") != "3" {
		t.Fatalf("status %d, cost %q", r.status, r.header.Get("X-RateLimit-Used-CurrentRequest"))
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2/nothing", nil)
	req.SetBasicAuth(adminKey, "X")
	req.Header.Set("Accept", "text/html")
	if r := e.send(req); r.status != 406 {
		t.Fatalf("Accept text/html on an unknown path: status %d", r.status)
	}
}
