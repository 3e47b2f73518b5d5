package freshdesk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

func TestQueryBuilder(t *testing.T) {
	day := time.Date(2017, 10, 1, 23, 0, 0, 0, time.FixedZone("x", -3*3600)) // 2017-10-02 in UTC
	cases := []struct {
		e    freshdesk.Expr
		want string
	}{
		{freshdesk.Eq("status", 2), `"status:2"`},
		{freshdesk.Eq("type", "Question"), `"type:'Question'"`},
		{freshdesk.Eq("tag", `it's a \ tag`), `"tag:'it\'s a \\ tag'"`},
		{freshdesk.Gte("priority", 3), `"priority:>3"`},
		{freshdesk.Lte("due_by", day), `"due_by:<'2017-10-02'"`},
		{freshdesk.Null("agent_id"), `"agent_id:null"`},
		{freshdesk.Eq(freshdesk.CF("skip_notifications"), true), `"cf_skip_notifications:true"`},
		{freshdesk.Eq(freshdesk.CF("cf_klantnummer"), int64(1080031140182)), `"cf_klantnummer:1080031140182"`},
		{freshdesk.And(freshdesk.Eq("status", 2), freshdesk.Or(freshdesk.Eq("priority", 3), freshdesk.Eq("priority", 4))),
			`"status:2 AND (priority:3 OR priority:4)"`},
		{freshdesk.Or(freshdesk.And(freshdesk.Eq("a", 1), freshdesk.Eq("b", 2)), freshdesk.And(freshdesk.Eq("c", 3))),
			`"(a:1 AND b:2) OR c:3"`},
		{freshdesk.And(freshdesk.And(freshdesk.Eq("a", 1), freshdesk.Eq("b", 2)), freshdesk.Eq("c", 3)), `"a:1 AND b:2 AND c:3"`},
	}
	for _, tc := range cases {
		got, err := tc.e.Build()
		if err != nil || got != tc.want {
			t.Errorf("Build() = %q, %v; want %q", got, err, tc.want)
		}
	}
	bad := []freshdesk.Expr{
		freshdesk.Eq("status OR 1", 2),
		freshdesk.Eq("subject", `say "hi"`),
		freshdesk.Eq("subject", "line\nbreak"),
		freshdesk.Eq("x", 1.5),
		freshdesk.Gte("type", "Question"),
		freshdesk.Eq("due_by", time.Time{}),
		freshdesk.And(),
		freshdesk.And(freshdesk.Eq("a", 1), freshdesk.Eq("b c", 1)),
		freshdesk.Eq("tag", strings.Repeat("x", 510)),
	}
	for _, e := range bad {
		if q, err := e.Build(); !errors.Is(err, freshdesk.ErrInvalidQuery) {
			t.Errorf("Build(%s) = %q, %v; want ErrInvalidQuery", e, q, err)
		}
	}
	// 512 characters including the quotes is the limit.
	ok := freshdesk.Eq("tag", strings.Repeat("x", 512-len(`"tag:''"`)))
	if q, err := ok.Build(); err != nil || len(q) != 512 {
		t.Errorf("512-character query: %d, %v", len(q), err)
	}
}

func TestSearchWireFormAndPageCap(t *testing.T) {
	var hits atomic.Int32
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.URL.Path != "/api/v2/search/tickets" {
			t.Errorf("path %s", r.URL.Path)
		}
		if !strings.HasPrefix(r.URL.RawQuery, "query=%22status%3A2%20AND%20") {
			t.Errorf("raw query %q: want quotes as %%22 and spaces as %%20", r.URL.RawQuery)
		}
		if q := r.URL.Query().Get("query"); q != `"status:2 AND (priority:3 OR priority:4)"` {
			t.Errorf("decoded query %q", q)
		}
		page := r.URL.Query().Get("page")
		if (n == 1 && page != "") || (n > 1 && page != fmt.Sprint(n)) {
			t.Errorf("request %d asked page %q", n, page)
		}
		if n > 10 {
			w.WriteHeader(400)
			return
		}
		res := freshdesk.SearchResult{Total: 1000}
		for i := range 30 {
			res.Results = append(res.Results, freshdesk.Ticket{ID: int64(n)*100 + int64(i)})
		}
		json.NewEncoder(w).Encode(res)
	}))
	e := freshdesk.And(freshdesk.Eq("status", 2), freshdesk.Or(freshdesk.Eq("priority", 3), freshdesk.Eq("priority", 4)))
	total := 0
	if err := c.SearchAll(context.Background(), e, func(p []freshdesk.Ticket) error { total += len(p); return nil }); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 10 || total != 300 {
		t.Fatalf("requests=%d tickets=%d; want 10 pages, 300 tickets", hits.Load(), total)
	}
	if _, err := c.SearchTickets(context.Background(), e, 11); !errors.Is(err, freshdesk.ErrInvalidQuery) {
		t.Fatalf("page 11: %v", err)
	}
}

func TestSearchStopsOnShortPage(t *testing.T) {
	var hits atomic.Int32
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"total":2,"results":[{"id":1},{"id":2}]}`)
	}))
	if err := c.SearchAll(context.Background(), freshdesk.Eq("status", 2), func([]freshdesk.Ticket) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests; want 1", hits.Load())
	}
}

// recorder serves a ticket on GET and records PUT bodies.
type recorder struct {
	t       *testing.T
	ticket  string
	gets    atomic.Int32
	puts    []map[string]any
	rawPuts []string
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case "GET":
		rc.gets.Add(1)
		io.WriteString(w, rc.ticket)
	case "PUT":
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			rc.t.Errorf("PUT body %q: %v", b, err)
		}
		rc.puts = append(rc.puts, m)
		rc.rawPuts = append(rc.rawPuts, string(b))
		io.WriteString(w, rc.ticket)
	}
}

func TestAdapterUpdateSendsOnlyChangedFields(t *testing.T) {
	rc := &recorder{t: t, ticket: ticketJSON}
	c, _, _ := newClient(t, rc)
	a := freshdesk.NewAdapter(c)
	if _, err := a.UpdateTicket(context.Background(), 14, ticketsystem.Update{Priority: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	if rc.gets.Load() != 0 || len(rc.rawPuts) != 1 || rc.rawPuts[0] != `{"priority":3}` {
		t.Fatalf("gets=%d puts=%q; want one PUT of exactly {\"priority\":3}", rc.gets.Load(), rc.rawPuts)
	}
	if _, err := a.UpdateTicket(context.Background(), 14, ticketsystem.Update{GroupID: ptr(int64(0)),
		CustomFields: map[string]any{"cf_x": nil}}); err != nil {
		t.Fatal(err)
	}
	if rc.rawPuts[1] != `{"custom_fields":{"cf_x":null},"group_id":null}` {
		t.Fatalf("PUT %q; want group_id null and the custom field", rc.rawPuts[1])
	}
}

func TestAdapterTagMerge(t *testing.T) {
	rc := &recorder{t: t, ticket: ticketJSON} // tags ["a"], priority 1
	c, _, _ := newClient(t, rc)
	a := freshdesk.NewAdapter(c)
	ctx := context.Background()
	if _, err := a.UpdateTicket(ctx, 14, ticketsystem.Update{AddTags: []string{"b", "a", "b"}, Priority: ptr(1), Status: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	if rc.gets.Load() != 1 || len(rc.puts) != 1 {
		t.Fatalf("gets=%d puts=%d; want read-modify-write", rc.gets.Load(), len(rc.puts))
	}
	if rc.rawPuts[0] != `{"status":3,"tags":["a","b"]}` {
		t.Fatalf("PUT %s; want the merged tag set and only the changed status", rc.rawPuts[0])
	}
	// Adding a tag the ticket has, with nothing else, writes nothing.
	got, err := a.UpdateTicket(ctx, 14, ticketsystem.Update{AddTags: []string{"a"}})
	if err != nil || got.ID != 14 || len(rc.puts) != 1 {
		t.Fatalf("no-op AddTags: ticket=%v err=%v puts=%d", got, err, len(rc.puts))
	}
	// SetTags replaces without reading.
	if _, err := a.UpdateTicket(ctx, 14, ticketsystem.Update{SetTags: []string{"z"}}); err != nil {
		t.Fatal(err)
	}
	if rc.gets.Load() != 2 || rc.rawPuts[1] != `{"tags":["z"]}` {
		t.Fatalf("SetTags: gets=%d put=%s", rc.gets.Load(), rc.rawPuts[1])
	}
}

func TestFindFirstTicketNotFound(t *testing.T) {
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"total":0,"results":[]}`)
	}))
	tk, err := freshdesk.NewAdapter(c).FindFirstTicket(context.Background(), ticketsystem.Query{Status: []int{2}})
	if tk != nil || !errors.Is(err, ticketsystem.ErrNotFound) {
		t.Fatalf("FindFirstTicket = %v, %v; want nil, ErrNotFound", tk, err)
	}
}
