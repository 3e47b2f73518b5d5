package freshdesksim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 3}); err != nil {
		t.Fatal(err)
	}
	const m401 = `{"code":"invalid_credentials","message":"You have to be logged in to perform this action."}`
	const m403 = `{"code":"access_denied","message":"You are not authorized to perform this action."}`
	tests := []struct {
		name, path, key string
		status          int
		body            string
	}{
		{"no auth", "/api/v2/tickets", "", 401, m401},
		{"wrong key", "/api/v2/tickets", "nope", 401, m401},
		{"admin tickets", "/api/v2/tickets", adminKey, 200, ""},
		{"agent tickets", "/api/v2/tickets", agentKey, 200, ""},
		{"agent groups", "/api/v2/groups", agentKey, 403, m403},
		{"agent agents", "/api/v2/agents", agentKey, 403, m403},
		{"agent agents/me", "/api/v2/agents/me", agentKey, 200, ""},
		{"agent ticket_fields", "/api/v2/ticket_fields", agentKey, 200, ""},
		{"admin groups", "/api/v2/groups", adminKey, 200, ""},
		{"admin agents", "/api/v2/agents", adminKey, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, tc.key, "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.body != "" && string(r.body) != tc.body {
				t.Fatalf("body %s, want %s", r.body, tc.body)
			}
		})
	}
	// The password is ignored, and the key owner is who /agents/me returns.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2/agents/me", nil)
	req.SetBasicAuth(adminKey, "anything")
	r := e.send(req)
	var me struct {
		ID      int64 `json:"id"`
		Contact struct {
			Name string `json:"name"`
		} `json:"contact"`
	}
	_ = json.Unmarshal(r.body, &me)
	if r.status != 200 || me.Contact.Name != "Sim Admin" || me.ID < 1e10 {
		t.Fatalf("agents/me: %d %s", r.status, r.body)
	}
}

func TestHeadersOnEveryResponse(t *testing.T) {
	e := newEnv(t, Config{Plan: "pro"})
	if err := e.sim.Generate(GenerateOptions{New: 2}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, key, body string
		status                  int
	}{
		{"GET", "/api/v2/tickets", adminKey, "", 200},
		{"GET", "/api/v2/tickets/999", adminKey, "", 404},
		{"GET", "/api/v2/tickets?bogus=1", adminKey, "", 400},
		{"GET", "/api/v2/tickets", "", "", 401},
		{"DELETE", "/api/v2/groups", adminKey, "", 405},
		{"GET", "/api/v2/nothing", adminKey, "", 404},
		{"PUT", "/api/v2/tickets/1", adminKey, `{"priority":2}`, 200},
	}
	for _, c := range cases {
		r := e.do(c.method, c.path, c.key, c.body)
		if r.status != c.status {
			t.Errorf("%s %s: status %d want %d", c.method, c.path, r.status, c.status)
		}
		for _, h := range []string{"X-RateLimit-Total", "X-RateLimit-Remaining", "X-RateLimit-Used-CurrentRequest", "X-Request-Id", "X-Freshdesk-API-Version"} {
			if r.header.Get(h) == "" {
				t.Errorf("%s %s: header %s missing", c.method, c.path, h)
			}
		}
		if got := r.header.Get("X-RateLimit-Total"); got != "400" {
			t.Errorf("X-RateLimit-Total = %s, want 400", got)
		}
	}
	if a, b := e.get("/api/v2/tickets").header.Get("X-Request-Id"), e.get("/api/v2/tickets").header.Get("X-Request-Id"); a == b {
		t.Errorf("request ids repeat: %s", a)
	}
}

func TestCredits(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 2}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		cost int
	}{
		{"/api/v2/tickets", 1},
		{"/api/v2/tickets?include=description", 3},
		{"/api/v2/tickets?include=stats,requester", 5},
		{"/api/v2/tickets?include=stats,requester,description", 7},
		{"/api/v2/tickets/1", 1},
		{"/api/v2/tickets/1?include=conversations", 2},
		{"/api/v2/tickets/1?include=conversations,requester,company,stats", 5},
		{"/api/v2/search/tickets?query=%22priority:1%22", 1},
	}
	for _, tc := range tests {
		r := e.get(tc.path)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tc.path, r.status, r.body)
		}
		if got := r.header.Get("X-RateLimit-Used-CurrentRequest"); got != strconv.Itoa(tc.cost) {
			t.Errorf("%s: cost %s, want %d", tc.path, got, tc.cost)
		}
	}
	st := e.sim.Stats()
	if st.Endpoints["tickets.list"].Credits != 1+3+5+7 || st.Endpoints["tickets.view"].Calls != 3 {
		t.Errorf("stats: %+v", st.Endpoints)
	}
}

func TestRateLimit(t *testing.T) {
	t.Run("trial total", func(t *testing.T) {
		e := newEnv(t, Config{Plan: "trial"})
		for i := range 50 {
			r := e.get("/api/v2/ticket_fields")
			if r.status != 200 {
				t.Fatalf("request %d: %d", i, r.status)
			}
			if rem := r.header.Get("X-RateLimit-Remaining"); rem != strconv.Itoa(49-i) {
				t.Fatalf("remaining %s after %d", rem, i+1)
			}
		}
		r := e.get("/api/v2/ticket_fields")
		if r.status != 429 || len(r.body) != 0 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("want 429 with empty JSON body: %d %q %q", r.status, r.body, r.header.Get("Content-Type"))
		}
		// The clock is at :00 of a minute, so the whole minute is left.
		if ra := r.header.Get("Retry-After"); ra != "60" {
			t.Fatalf("Retry-After %q, want 60", ra)
		}
		if e.sim.Stats().RateLimited != 1 {
			t.Fatal("429 not counted")
		}
		e.clock.Add(time.Minute)
		if r := e.get("/api/v2/ticket_fields"); r.status != 200 {
			t.Fatalf("after the window: %d", r.status)
		}
	})
	t.Run("growth list sub-limit", func(t *testing.T) {
		e := newEnv(t, Config{Plan: "growth"})
		if err := e.sim.Generate(GenerateOptions{New: 1}); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if r := e.get("/api/v2/tickets"); r.status != 200 {
				t.Fatalf("list %d: %d", i, r.status)
			}
		}
		if r := e.get("/api/v2/tickets"); r.status != 429 {
			t.Fatalf("21st list: %d", r.status)
		}
		if r := e.get("/api/v2/tickets/1"); r.status != 200 {
			t.Fatalf("view after list limit: %d", r.status)
		}
	})
	t.Run("retry-after scaled", func(t *testing.T) {
		e := newEnv(t, Config{Plan: "trial", TimeScale: 60})
		e.clock.Add(30 * time.Second)
		for range 50 {
			e.get("/api/v2/ticket_fields")
		}
		r := e.get("/api/v2/ticket_fields")
		if r.status != 429 || r.header.Get("Retry-After") != "1" {
			t.Fatalf("status %d Retry-After %q, want 429 and 1", r.status, r.header.Get("Retry-After"))
		}
	})
	t.Run("unlimited", func(t *testing.T) {
		e := newEnv(t, Config{})
		for range 300 {
			if r := e.get("/api/v2/ticket_fields"); r.status != 200 {
				t.Fatalf("unlimited plan answered %d", r.status)
			}
		}
	})
}

// listEnv has tickets with known times: 1-3 old (45 days), 4-8 recent.
func listEnv(t *testing.T) *env {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{}); err != nil { // groups only
		t.Fatal(err)
	}
	e.clock.Add(-45 * 24 * time.Hour)
	for i := range 3 {
		if _, err := e.sim.AddTicket(NewTicket{Subject: fmt.Sprintf("old %d", i), Description: "old", Email: "old@example.com"}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
	}
	e.clock.Add(45 * 24 * time.Hour)
	for i := range 5 {
		if _, err := e.sim.AddTicket(NewTicket{Subject: fmt.Sprintf("new %d", i), Description: "body <b>x</b>", Email: fmt.Sprintf("c%d@example.com", i%2)}); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
	}
	return e
}

func TestListTickets(t *testing.T) {
	e := listEnv(t)
	if err := e.sim.SetSpam(8, true, false); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetSpam(7, false, true); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Minute)
	if err := e.sim.AgentUpdate(4, map[string]any{"priority": 3}); err != nil {
		t.Fatal(err)
	}
	tk1, _ := e.sim.Ticket(1)
	c0, _ := e.sim.Ticket(4)
	tests := []struct {
		name  string
		query string
		want  []int64
	}{
		{"default window, newest first, spam and deleted hidden", "", []int64{6, 5, 4}},
		{"asc", "?order_type=asc", []int64{4, 5, 6}},
		{"updated_since includes old", "?updated_since=" + url.QueryEscape(tk1.CreatedAt.Format(time.RFC3339)), []int64{6, 5, 4, 3, 2, 1}},
		{"updated_since bare date", "?updated_since=2000-01-01", []int64{6, 5, 4, 3, 2, 1}},
		{"order_by updated_at", "?order_by=updated_at", []int64{4, 6, 5}},
		{"filter spam", "?filter=spam", []int64{8}},
		{"filter deleted", "?filter=deleted", []int64{7}},
		{"new_and_my_open", "?filter=new_and_my_open", []int64{6, 5, 4}},
		{"watching", "?filter=watching", []int64{}},
		{"requester_id", "?requester_id=" + strconv.FormatInt(c0.RequesterID, 10), []int64{6, 4}},
		{"email", "?email=" + url.QueryEscape("c1@example.com"), []int64{5}},
		{"per_page", "?per_page=2", []int64{6, 5}},
		{"page 2", "?per_page=2&page=2", []int64{4}},
		{"page beyond", "?page=5", []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get("/api/v2/tickets" + tc.query)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if got := ids(t, r.body); !slices.Equal(got, tc.want) {
				t.Fatalf("ids %v, want %v", got, tc.want)
			}
		})
	}
}

func TestListValidation(t *testing.T) {
	e := listEnv(t)
	tests := []struct {
		query, field, code, msg string
	}{
		{"?page=301", "page", "invalid_value", "You cannot access tickets beyond the 300th page. Please provide a smaller page number."},
		{"?per_page=101", "per_page", "invalid_value", ""},
		{"?per_page=0", "per_page", "invalid_value", ""},
		{"?page=abc", "page", "invalid_value", msgPositiveInt},
		{"?status=2", "status", "invalid_field", "Unexpected/invalid field in request"},
		{"?ticket", "ticket", "invalid_field", "Unexpected/invalid field in request"},
		{"?order_by=subject", "order_by", "invalid_value", "It should be one of these values: 'created_at,due_by,updated_at,status'"},
		{"?order_type=up", "order_type", "invalid_value", "It should be one of these values: 'asc,desc'"},
		{"?filter=mine", "filter", "invalid_value", ""},
		{"?include=notes", "include", "invalid_value", ""},
		{"?updated_since=yesterday", "updated_since", "invalid_value", ""},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := e.get("/api/v2/tickets" + tc.query)
			var body struct {
				Description string       `json:"description"`
				Errors      []fieldError `json:"errors"`
			}
			if r.status != 400 || json.Unmarshal(r.body, &body) != nil || body.Description != "Validation failed" || len(body.Errors) != 1 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			got := body.Errors[0]
			if got.Field != tc.field || got.Code != tc.code || (tc.msg != "" && got.Message != tc.msg) {
				t.Fatalf("error %+v, want field %s code %s msg %q", got, tc.field, tc.code, tc.msg)
			}
		})
	}
}

func TestListPaginationLinkAndDescription(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 7}); err != nil {
		t.Fatal(err)
	}
	var all []int64
	next := e.srv.URL + "/api/v2/tickets?per_page=3&order_type=asc"
	pages := 0
	for next != "" {
		req, _ := http.NewRequest("GET", next, nil)
		req.SetBasicAuth(adminKey, "X")
		r := e.send(req)
		pages++
		all = append(all, ids(t, r.body)...)
		link := r.header.Get("Link")
		next = ""
		if link != "" {
			if !strings.HasSuffix(link, `>; rel="next"`) || !strings.HasPrefix(link, "<"+e.srv.URL+"/api/v2/tickets?") {
				t.Fatalf("bad link %q", link)
			}
			next = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			if !strings.Contains(next, "per_page=3") || !strings.Contains(next, "order_type=asc") {
				t.Fatalf("link lost parameters: %s", next)
			}
		}
	}
	if pages != 3 || !slices.Equal(all, []int64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("pages %d ids %v", pages, all)
	}
	// Exactly-full last page: no link.
	if r := e.get("/api/v2/tickets?per_page=7"); r.header.Get("Link") != "" {
		t.Fatalf("link on the last page: %s", r.header.Get("Link"))
	}
	var plain, withDesc []map[string]any
	_ = json.Unmarshal(e.get("/api/v2/tickets").body, &plain)
	_ = json.Unmarshal(e.get("/api/v2/tickets?include=description").body, &withDesc)
	if _, ok := plain[0]["description"]; ok {
		t.Fatal("description without include")
	}
	if _, ok := withDesc[0]["description_text"]; !ok {
		t.Fatal("no description_text with include=description")
	}
	var inc []map[string]any
	_ = json.Unmarshal(e.get("/api/v2/tickets?include=requester,stats").body, &inc)
	if _, ok := inc[0]["stats"].(map[string]any); !ok {
		t.Fatal("no stats object")
	}
	if rq, ok := inc[0]["requester"].(map[string]any); !ok || rq["email"] == "" {
		t.Fatal("no requester object")
	}
}

func TestViewTicket(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.get("/api/v2/tickets/1")
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if v["description"] == nil || v["description_text"] == nil || v["group_id"] != nil || v["type"] != nil {
		t.Fatalf("new ticket view: %s", r.body)
	}
	for _, p := range []string{"/api/v2/tickets/999", "/api/v2/tickets/abc"} {
		r := e.get(p)
		if r.status != 404 || len(r.body) != 0 {
			t.Fatalf("%s: %d %q", p, r.status, r.body)
		}
	}
	r = e.get("/api/v2/tickets/1?include=conversations,requester,company,stats")
	_ = json.Unmarshal(r.body, &v)
	for _, k := range []string{"conversations", "requester", "company", "stats"} {
		if _, ok := v[k]; !ok {
			t.Errorf("include %s missing", k)
		}
	}
}

func TestUpdateValidation(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 2}); err != nil {
		t.Fatal(err)
	}
	const allStatuses = "2,3,4,5,6,7"
	types := "Question,Incident,Problem,Feature Request,Refund"
	tests := []struct {
		name, body   string
		field, code  string
		msg          string
		statusWanted int
	}{
		{"string status", `{"status":"2"}`, "status", "datatype_mismatch", "Value set is of type String.It should be one of these values: '" + allStatuses + "'", 400},
		{"unknown status", `{"status":9}`, "status", "invalid_value", "It should be one of these values: '" + allStatuses + "'", 400},
		{"unknown priority", `{"priority":5}`, "priority", "invalid_value", "It should be one of these values: '1,2,3,4'", 400},
		{"unknown type", `{"type":"Bug"}`, "type", "invalid_value", "It should be one of these values: '" + types + "'", 400},
		{"string group id", `{"group_id":"12"}`, "group_id", "invalid_value", msgPositiveInt, 400},
		{"negative responder", `{"responder_id":-1}`, "responder_id", "invalid_value", msgPositiveInt, 400},
		{"unknown group", `{"group_id":12345678901}`, "group_id", "invalid_value", "There is no group matching the given group_id", 400},
		{"read-only id", `{"id":5}`, "id", "invalid_field", msgInvalidField, 400},
		{"description_html", `{"description_html":"<b>x</b>"}`, "description_html", "invalid_field", msgInvalidField, 400},
		{"unknown custom", `{"custom_fields":{"cf_nope":"x"}}`, "cf_nope", "invalid_field", msgInvalidField, 400},
		{"bad dropdown", `{"custom_fields":{"cf_language":"xx"}}`, "cf_language", "invalid_value", "It should be one of these values: 'en,de,fr,es'", 400},
		{"bad checkbox", `{"custom_fields":{"cf_vip":"yes"}}`, "cf_vip", "datatype_mismatch", "Value set is of type String.It should be a/an Boolean", 400},
		{"tags not array", `{"tags":"a"}`, "tags", "datatype_mismatch", "", 400},
		{"ok", `{"status":6,"priority":4,"type":"Incident","tags":["x"],"custom_fields":{"cf_language":"de","cf_vip":true,"cf_customer_number":42}}`, "", "", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("PUT", "/api/v2/tickets/1", adminKey, tc.body)
			if r.status != tc.statusWanted {
				t.Fatalf("status %d, want %d: %s", r.status, tc.statusWanted, r.body)
			}
			if tc.statusWanted != 400 {
				return
			}
			var body struct {
				Description string       `json:"description"`
				Errors      []fieldError `json:"errors"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil || body.Description != "Validation failed" || len(body.Errors) != 1 {
				t.Fatalf("body %s", r.body)
			}
			g := body.Errors[0]
			if g.Field != tc.field || g.Code != tc.code || (tc.msg != "" && g.Message != tc.msg) {
				t.Fatalf("got %+v", g)
			}
		})
	}
	// A rejected update changes nothing.
	tk, _ := e.sim.Ticket(1)
	if tk.Status != 6 || tk.Priority != 4 || tk.Type != "Incident" || tk.CustomFields["cf_customer_number"] != int64(42) {
		t.Fatalf("ticket after updates: %+v", tk)
	}
	// Several errors at once are all reported.
	r := e.do("PUT", "/api/v2/tickets/2", adminKey, `{"status":"x","priority":"y","foo":1}`)
	if !strings.Contains(string(r.body), `"field":"foo"`) || strings.Count(string(r.body), `"field"`) != 3 {
		t.Fatalf("multi errors: %s", r.body)
	}
}

func TestUpdateRequestErrors(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 3}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetSpam(2, true, false); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetSpam(3, false, true); err != nil {
		t.Fatal(err)
	}
	send := func(path, ctype, body string) result {
		req, _ := http.NewRequest("PUT", e.srv.URL+path, strings.NewReader(body))
		req.SetBasicAuth(adminKey, "X")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		return e.send(req)
	}
	tests := []struct {
		name, path, ctype, body string
		status                  int
		code                    string
	}{
		{"invalid json", "/api/v2/tickets/1", "application/json", `{"status":`, 400, "invalid_json"},
		{"not an object", "/api/v2/tickets/1", "application/json", `[1]`, 400, "invalid_json"},
		{"trailing data", "/api/v2/tickets/1", "application/json", `{} {}`, 400, "invalid_json"},
		{"xml", "/api/v2/tickets/1", "application/xml", `<a/>`, 415, "invalid_content_type"},
		{"no content type", "/api/v2/tickets/1", "", `{}`, 415, "invalid_content_type"},
		{"json charset ok", "/api/v2/tickets/1", "application/json; charset=utf-8", `{"priority":2}`, 200, ""},
		{"spam", "/api/v2/tickets/2", "application/json", `{"priority":2}`, 405, ""},
		{"deleted", "/api/v2/tickets/3", "application/json", `{"priority":2}`, 405, ""},
		{"unknown", "/api/v2/tickets/99", "application/json", `{"priority":2}`, 404, ""},
		{"too large", "/api/v2/tickets/1", "application/json", `{"description":"` + strings.Repeat("a", maxBody) + `"}`, 413, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := send(tc.path, tc.ctype, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.200s", r.status, tc.status, r.body)
			}
			if tc.code != "" && !strings.Contains(string(r.body), `"code":"`+tc.code+`"`) {
				t.Fatalf("body %s, want code %s", r.body, tc.code)
			}
			if tc.status == 404 && len(r.body) != 0 {
				t.Fatalf("404 body not empty: %q", r.body)
			}
		})
	}
}

func TestUpdateSemantics(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 1}); err != nil {
		t.Fatal(err)
	}
	gid, _ := e.sim.GroupID("Billing")
	e.clock.Add(1500 * time.Millisecond) // mid-second: timestamps must stay whole seconds
	r := e.do("PUT", "/api/v2/tickets/1", adminKey, fmt.Sprintf(`{"group_id":%d,"tags":["a","b"],"type":"Question"}`, gid))
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if v["group_id"] != float64(gid) || v["type"] != "Question" {
		t.Fatalf("response not the updated ticket: %s", r.body)
	}
	first, _ := e.sim.Ticket(1)
	if first.UpdatedAt.Nanosecond() != 0 || !strings.HasSuffix(v["updated_at"].(string), "Z") {
		t.Fatalf("updated_at not whole seconds: %v", first.UpdatedAt)
	}
	// Tags replace the set.
	e.do("PUT", "/api/v2/tickets/1", adminKey, `{"tags":["c"]}`)
	second, _ := e.sim.Ticket(1)
	if !slices.Equal(second.Tags, []string{"c"}) {
		t.Fatalf("tags %v, want [c]", second.Tags)
	}
	// Same simulated second: updated_at still strictly increases, and the
	// clock moves with it rather than the ticket running ahead of it.
	if !second.UpdatedAt.After(first.UpdatedAt) || second.UpdatedAt.After(e.sim.now()) {
		t.Fatalf("updated_at %v then %v (now %v)", first.UpdatedAt, second.UpdatedAt, e.sim.now())
	}
	e.do("PUT", "/api/v2/tickets/1", adminKey, `{"priority":3}`)
	third, _ := e.sim.Ticket(1)
	if !third.UpdatedAt.After(second.UpdatedAt) || third.UpdatedAt.After(e.sim.now()) {
		t.Fatal("third update did not advance updated_at, or ran ahead of the clock")
	}
	// Clearing with null.
	e.do("PUT", "/api/v2/tickets/1", adminKey, `{"group_id":null,"type":null}`)
	if tk, _ := e.sim.Ticket(1); tk.GroupID != 0 || tk.Type != "" {
		t.Fatalf("null did not clear: %+v", tk)
	}
	// Updated tickets show up for updated_since polling.
	since := url.QueryEscape(third.UpdatedAt.Format(time.RFC3339))
	if got := ids(t, e.get("/api/v2/tickets?updated_since="+since).body); !slices.Equal(got, []int64{1}) {
		t.Fatalf("updated_since: %v", got)
	}
	// A ticket created now is stamped at or after every earlier change, so
	// a client whose cursor reached third.UpdatedAt still sees it.
	id, err := e.sim.AddTicket(NewTicket{Subject: "later", Description: "x", Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	if later, _ := e.sim.Ticket(id); later.UpdatedAt.Before(third.UpdatedAt) {
		t.Fatalf("new ticket stamped %v, before the last change %v", later.UpdatedAt, third.UpdatedAt)
	}
}

func TestNotes(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{New: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/api/v2/tickets/1/notes", adminKey, `{"body":"Triage: Billing (0.93)"}`)
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var n map[string]any
	_ = json.Unmarshal(r.body, &n)
	if n["private"] != true || n["body"] != "<div>Triage: Billing (0.93)</div>" || n["body_text"] != "Triage: Billing (0.93)" || n["ticket_id"] != float64(1) || n["source"] != float64(2) {
		t.Fatalf("note %s", r.body)
	}
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, e.srv.URL+"/api/v2/conversations/") {
		t.Fatalf("Location %q", loc)
	}
	r = e.do("POST", "/api/v2/tickets/1/notes", adminKey, `{"body":"public","private":false}`)
	if r.status != 201 || !strings.Contains(string(r.body), `"private":false`) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	for _, bad := range []string{`{}`, `{"body":""}`, `{"body":1}`, `{"body":"x","private":"no"}`, `{"body":"x","foo":1}`} {
		if r := e.do("POST", "/api/v2/tickets/1/notes", adminKey, bad); r.status != 400 {
			t.Errorf("%s: %d", bad, r.status)
		}
	}
	if r := e.do("POST", "/api/v2/tickets/9/notes", adminKey, `{"body":"x"}`); r.status != 404 {
		t.Errorf("unknown ticket: %d", r.status)
	}
	r = e.get("/api/v2/tickets/1/conversations")
	var convs []map[string]any
	_ = json.Unmarshal(r.body, &convs)
	if len(convs) != 2 || convs[0]["source"] != float64(2) || convs[1]["private"] != false {
		t.Fatalf("conversations %s", r.body)
	}
	if r := e.get("/api/v2/tickets/1/conversations?per_page=1"); r.header.Get("Link") == "" || len(ids(t, r.body)) != 1 {
		t.Fatal("conversations not paginated")
	}
	if got := e.sim.Notes(1); len(got) != 2 || !got[0].Private {
		t.Fatalf("Notes() = %+v", got)
	}
}

func TestCatalogs(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sim.Generate(GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	var groups []map[string]any
	_ = json.Unmarshal(e.get("/api/v2/groups").body, &groups)
	if len(groups) < 6 || len(groups) > 10 {
		t.Fatalf("%d groups", len(groups))
	}
	for _, g := range groups {
		if _, ok := g["agent_ids"]; ok {
			t.Fatal("group list has agent_ids")
		}
		if g["id"].(float64) < 1e10 {
			t.Fatalf("group id %v < 1e10", g["id"])
		}
	}
	var one map[string]any
	r := e.get(fmt.Sprintf("/api/v2/groups/%d", int64(groups[0]["id"].(float64))))
	_ = json.Unmarshal(r.body, &one)
	if agents, ok := one["agent_ids"].([]any); !ok || len(agents) == 0 || agents[0].(float64) < 1e10 {
		t.Fatalf("group view: %s", r.body)
	}
	if r := e.get("/api/v2/groups/1"); r.status != 404 {
		t.Fatalf("unknown group %d", r.status)
	}
	var fields []map[string]any
	_ = json.Unmarshal(e.get("/api/v2/ticket_fields").body, &fields)
	byType := map[string]map[string]any{}
	for _, f := range fields {
		byType[f["type"].(string)] = f
	}
	if ch, ok := byType["default_ticket_type"]["choices"].([]any); !ok || ch[0] != "Question" {
		t.Fatalf("ticket_type choices %v", byType["default_ticket_type"]["choices"])
	}
	for _, typ := range []string{"default_priority", "default_source", "default_group", "default_agent"} {
		ch, ok := byType[typ]["choices"].(map[string]any)
		if !ok || len(ch) == 0 {
			t.Fatalf("%s choices %v", typ, byType[typ]["choices"])
		}
		for _, v := range ch {
			if _, ok := v.(float64); !ok {
				t.Fatalf("%s choice value %v not a number", typ, v)
			}
		}
	}
	if byType["default_priority"]["choices"].(map[string]any)["Urgent"] != float64(4) {
		t.Fatal("priority Urgent != 4")
	}
	st := byType["default_status"]["choices"].(map[string]any)
	if w, ok := st["6"].([]any); !ok || w[0] != "Waiting on Customer" || len(w) != 2 {
		t.Fatalf("status 6: %v", st["6"])
	}
	if w := st["7"].([]any); w[0] != "Waiting on Third Party" {
		t.Fatalf("status 7: %v", w)
	}
	if ch, ok := byType["custom_dropdown"]["choices"].([]any); !ok || len(ch) == 0 {
		t.Fatal("custom dropdown choices not an array")
	}
	if name := byType["custom_dropdown"]["name"].(string); !strings.HasPrefix(name, "cf_") {
		t.Fatalf("custom field name %s", name)
	}
	var filtered []map[string]any
	_ = json.Unmarshal(e.get("/api/v2/ticket_fields?type=default_status").body, &filtered)
	if len(filtered) != 1 {
		t.Fatalf("type filter: %d fields", len(filtered))
	}
	var agents []map[string]any
	_ = json.Unmarshal(e.get("/api/v2/agents?per_page=100").body, &agents)
	if len(agents) < 10 || agents[0]["contact"].(map[string]any)["email"] == "" {
		t.Fatalf("agents %d", len(agents))
	}
}
