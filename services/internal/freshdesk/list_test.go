package freshdesk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// listServer serves GET /api/v2/tickets over a fixed ticket set the way
// Freshdesk does: updated_since filter, updated_at ascending, a link header
// while more pages exist, and 400 beyond page 300. It ignores per_page and
// uses pageSize so tests can reach the page cap cheaply.
type listServer struct {
	t        *testing.T
	pageSize int
	tickets  []freshdesk.Ticket
	mu       sync.Mutex
	queries  []url.Values
	// afterServe, when set, runs after each response with the number of
	// requests served: a test changes the ticket set while it is paged.
	afterServe func(n int)
}

func (s *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.queries = append(s.queries, q)
	s.mu.Unlock()
	if q.Get("order_by") != "updated_at" || q.Get("order_type") != "asc" || q.Get("per_page") != "100" ||
		q.Get("include") != "description" {
		s.t.Errorf("query %v lacks order_by=updated_at order_type=asc per_page=100 include=description", q)
	}
	since, err := time.Parse(time.RFC3339, q.Get("updated_since"))
	if err != nil {
		s.t.Errorf("updated_since %q: %v", q.Get("updated_since"), err)
	}
	page := 1
	if p := q.Get("page"); p != "" {
		page, _ = strconv.Atoi(p)
	}
	if page > 300 {
		w.WriteHeader(400)
		io.WriteString(w, `{"description":"Validation failed","errors":[{"field":"page","message":"You cannot access tickets beyond the 300th page. Please provide a smaller page number.","code":"invalid_value"}]}`)
		return
	}
	var match []freshdesk.Ticket
	for _, t := range s.tickets {
		if !t.UpdatedAt.Before(since) {
			match = append(match, t)
		}
	}
	sort.SliceStable(match, func(i, j int) bool { return match[i].UpdatedAt.Before(match[j].UpdatedAt) })
	lo := min((page-1)*s.pageSize, len(match))
	hi := min(lo+s.pageSize, len(match))
	if hi < len(match) {
		next := *r.URL
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, next.RequestURI()))
	}
	w.Header().Set("X-Ratelimit-Used-CurrentRequest", "3")
	json.NewEncoder(w).Encode(match[lo:hi])
	if s.afterServe != nil {
		s.mu.Lock()
		n := len(s.queries)
		s.mu.Unlock()
		s.afterServe(n)
	}
}

func (s *listServer) maxPage() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0
	for _, q := range s.queries {
		p, _ := strconv.Atoi(q.Get("page"))
		m = max(m, p)
	}
	return m
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ticketsEvery makes n tickets whose updated_at advances one second every
// `same` tickets, so groups of tickets share a timestamp.
func ticketsEvery(n, same int) []freshdesk.Ticket {
	out := make([]freshdesk.Ticket, n)
	for i := range out {
		out[i] = freshdesk.Ticket{ID: int64(i + 1), Subject: "t" + strconv.Itoa(i+1),
			CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(i/same) * time.Second)}
	}
	return out
}

func TestListTicketsSinceFollowsLinks(t *testing.T) {
	ls := &listServer{t: t, pageSize: 7, tickets: ticketsEvery(30, 1)}
	c, _, _ := newClient(t, ls)
	var got []int64
	pages := 0
	err := c.ListTicketsSince(context.Background(), t0.Add(5*time.Second), func(p []freshdesk.Ticket) error {
		pages++
		for _, tk := range p {
			got = append(got, tk.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 25 || got[0] != 6 || got[24] != 30 || pages != 4 {
		t.Fatalf("got %d tickets in %d pages (%v); want 6..30 in 4 pages", len(got), pages, got)
	}
	if ls.queries[0].Get("updated_since") != "2025-01-01T00:00:05Z" {
		t.Errorf("first updated_since %q", ls.queries[0].Get("updated_since"))
	}
}

func TestListTicketsSincePagesByKey(t *testing.T) {
	// One ticket per page and three tickets per timestamp: every page past
	// a timestamp re-anchors on it; the tickets sharing the anchor come back
	// on the new first page and must be dropped; the link is followed only
	// within one timestamp.
	ls := &listServer{t: t, pageSize: 1, tickets: ticketsEvery(700, 3)}
	c, _, _ := newClient(t, ls)
	seen := map[int64]int{}
	var last time.Time
	err := c.ListTicketsSince(context.Background(), t0, func(p []freshdesk.Ticket) error {
		for _, tk := range p {
			seen[tk.ID]++
			if tk.UpdatedAt.Before(last) {
				t.Fatalf("ticket %d out of order", tk.ID)
			}
			last = tk.UpdatedAt
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 700 {
		t.Fatalf("delivered %d distinct tickets; want 700", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("ticket %d delivered %d times", id, n)
		}
	}
	if ls.maxPage() > 4 {
		t.Errorf("deepest page %d; want at most 4 (one timestamp of 3 tickets, then re-anchor)", ls.maxPage())
	}
	anchors := map[string]bool{}
	for _, q := range ls.queries {
		anchors[q.Get("updated_since")] = true
	}
	if len(anchors) < 700/3 {
		t.Errorf("used %d distinct updated_since values; want one per timestamp", len(anchors))
	}
}

func TestListTicketsSinceMissesNothingWhileTheListChanges(t *testing.T) {
	// While the list is read, tickets not yet read are updated (as the
	// writer does): each moves to the end. Offset pages would then skip the
	// ticket that slides into its place; key pages see every ticket.
	tickets := ticketsEvery(60, 1)
	ls := &listServer{t: t, pageSize: 10}
	var mu sync.Mutex
	ls.tickets = tickets
	bump := t0.Add(time.Hour)
	ls.afterServe = func(n int) {
		mu.Lock()
		defer mu.Unlock()
		// After each response, update the first ticket of what is unread.
		i := n*10 + 1
		if i < len(ls.tickets) {
			ls.tickets[i].UpdatedAt = bump
			bump = bump.Add(time.Second)
		}
	}
	c, _, _ := newClient(t, ls)
	seen := map[int64]bool{}
	err := c.ListTicketsSince(context.Background(), t0, func(p []freshdesk.Ticket) error {
		for _, tk := range p {
			seen[tk.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tickets {
		if !seen[tk.ID] {
			t.Errorf("ticket %d never listed", tk.ID)
		}
	}
}

func TestListTicketsSinceCannotReanchor(t *testing.T) {
	ls := &listServer{t: t, pageSize: 1, tickets: ticketsEvery(301, 1000)}
	c, _, _ := newClient(t, ls)
	err := c.ListTicketsSince(context.Background(), t0, func([]freshdesk.Ticket) error { return nil })
	if err == nil {
		t.Fatal("no error when 300 pages share one updated_at")
	}
}

func TestListStopsOnCallbackError(t *testing.T) {
	ls := &listServer{t: t, pageSize: 2, tickets: ticketsEvery(10, 1)}
	c, _, _ := newClient(t, ls)
	stop := errors.New("stop")
	if err := c.ListTicketsSince(context.Background(), t0, func([]freshdesk.Ticket) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("err = %v", err)
	}
	if len(ls.queries) != 1 {
		t.Fatalf("%d requests after the callback failed; want 1", len(ls.queries))
	}
}

func TestForeignNextLinkRefused(t *testing.T) {
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<https://evil.example.com/api/v2/tickets?page=2>; rel="next"`)
		io.WriteString(w, `[]`)
	}))
	_, err := c.ListTickets(context.Background(), freshdesk.ListOptions{})
	if !errors.Is(err, ticketsystem.ErrInvalidResponse) {
		t.Fatalf("err = %v; want the foreign link refused", err)
	}
}

func TestConversationsAndGroupsPaginate(t *testing.T) {
	c, _, _ := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		if r.URL.Query().Get("per_page") != "100" {
			t.Errorf("per_page %q", r.URL.Query().Get("per_page"))
		}
		switch page {
		case "":
			w.Header().Set("Link", `<`+r.URL.Path+`?per_page=100&page=2>; rel="next"`)
			fmt.Fprintf(w, `[{"id":1,"name":"g1"}]`)
		case "2":
			fmt.Fprintf(w, `[{"id":10000000002,"name":"g2"}]`)
		}
	}))
	gs, err := c.Groups(context.Background())
	if err != nil || len(gs) != 2 || gs[1].ID != 10000000002 {
		t.Fatalf("groups %+v, %v", gs, err)
	}
	cs, err := c.Conversations(context.Background(), 3)
	if err != nil || len(cs) != 2 {
		t.Fatalf("conversations %+v, %v", cs, err)
	}
}

func TestListTicketsSinceVerifiesASecondReadByOffset(t *testing.T) {
	// 250 tickets stamped in one second (a bulk import) must be paged by
	// offset. While that is read, 10 tickets of the first page are updated
	// (they move to a later second) and the rest slide back by 10: the
	// client re-reads the second from its first page before moving on, so
	// none is missed, and each ticket version is delivered once.
	ls := &listServer{t: t, pageSize: 100, tickets: ticketsEvery(250, 1000)}
	moved := false
	ls.afterServe = func(n int) {
		if n == 1 && !moved {
			moved = true
			for i := 0; i < 10; i++ {
				ls.tickets[i].UpdatedAt = t0.Add(time.Hour)
			}
		}
	}
	c, _, _ := newClient(t, ls)
	seen := map[int64]int{}
	err := c.ListTicketsSince(context.Background(), t0.Add(-time.Minute), func(p []freshdesk.Ticket) error {
		for _, tk := range p {
			seen[tk.ID]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 250; i++ {
		if seen[i] == 0 {
			t.Errorf("ticket %d never listed", i)
		}
	}
	for id, k := range seen {
		if k > 2 || (k == 2 && id > 10) {
			t.Errorf("ticket %d delivered %d times", id, k)
		}
	}
}
