package freshdesk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
)

// listRecorder records the query of every ticket list call before the
// simulator answers it.
type listRecorder struct {
	h     http.Handler
	limit int
	mu    sync.Mutex
	qs    []url.Values
	// views counts GET /api/v2/tickets/{id}.
	views int
	// oversized lists the calls ("list" or "view") whose response body
	// exceeded limit, in order.
	oversized []string
}

// countingWriter counts the body bytes written and records the call as
// oversized before passing on the bytes that cross the limit: the client
// can only see the excess after that, so the record's order is the order
// in which the client met the oversized responses. (Recording once the
// handler returns would not be: the handler may finish writing after the
// client has given up on the response and moved on.)
type countingWriter struct {
	http.ResponseWriter
	n       int
	limit   int
	crossed func()
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.crossed != nil && c.n+len(b) > c.limit {
		c.crossed()
		c.crossed = nil
	}
	c.n += len(b)
	return c.ResponseWriter.Write(b)
}

func (l *listRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := ""
	l.mu.Lock()
	switch {
	case r.URL.Path == "/api/v2/tickets":
		l.qs = append(l.qs, r.URL.Query())
		kind = "list"
	case strings.HasPrefix(r.URL.Path, "/api/v2/tickets/"):
		l.views++
		kind = "view"
	}
	l.mu.Unlock()
	cw := &countingWriter{ResponseWriter: w, limit: l.limit, crossed: func() {
		l.mu.Lock()
		l.oversized = append(l.oversized, kind)
		l.mu.Unlock()
	}}
	l.h.ServeHTTP(cw, r)
}

func (l *listRecorder) queries() []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]url.Values(nil), l.qs...)
}

// oversizeSim is a simulator whose clock moves one second per added ticket,
// behind a listRecorder, with a client whose response limit is limit.
func oversizeSim(t *testing.T, limit int64) (*freshdesksim.Sim, *listRecorder, *freshdesk.Client, func(desc string) int64) {
	t.Helper()
	var mu sync.Mutex
	clock := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	sim, err := freshdesksim.New(freshdesksim.Config{Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &listRecorder{h: sim, limit: int(limit)}
	srv := httptest.NewServer(rec)
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	c, err := freshdesk.New(freshdesk.Config{APIKey: "sim-admin-key", BaseURL: srv.URL, HTTPClient: srv.Client(),
		MaxResponseBytes: limit, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	add := func(desc string) int64 {
		id, err := sim.AddTicket(freshdesksim.NewTicket{Subject: "ticket", Description: desc})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		clock = clock.Add(time.Second)
		mu.Unlock()
		return id
	}
	return sim, rec, c, add
}

// TestOversizedPageIsReadAgainInSmallerPages: 40 tickets of ~30 KB (as
// JSON: the HTML and the text of a 14 KB body) make a 100-ticket page about
// 1.2 MB against a 256 KiB limit. The page is read again from the same
// updated_since, order and include with per_page halved until it fits
// (100, 50, 25, 12, 6), the size grows back after each re-anchor, and every
// ticket is delivered exactly once, oldest first.
func TestOversizedPageIsReadAgainInSmallerPages(t *testing.T) {
	_, rec, c, add := oversizeSim(t, 256<<10)
	body := strings.Repeat("lorem ipsum dolor sit amet ", 14000/27)
	var ids []int64
	for range 40 {
		ids = append(ids, add(body))
	}
	since := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	seen := map[int64]int{}
	var order []int64
	err := c.ChangesSince(context.Background(), since, func(p freshdesk.FeedPage) error {
		if p.Unreadable != "" {
			t.Errorf("page of %d marked unreadable: %s", len(p.Tickets), p.Unreadable)
		}
		for _, tk := range p.Tickets {
			seen[tk.ID]++
			order = append(order, tk.ID)
			if !strings.Contains(tk.DescriptionText, "lorem ipsum") {
				t.Errorf("ticket %d delivered without its description", tk.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("ticket %d delivered %d times; want once", id, seen[id])
		}
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			t.Fatalf("delivered out of order: %v", order)
		}
	}

	qs := rec.queries()
	per := func(q url.Values) int { n, _ := strconv.Atoi(q.Get("per_page")); return n }
	if len(qs) < 6 || per(qs[0]) != 100 {
		t.Fatalf("list calls %v; want the first at per_page=100 followed by smaller ones", qs)
	}
	// The first page shrinks by halves, with the same window and order.
	want := []int{100, 50, 25, 12, 6}
	for i, w := range want {
		q := qs[i]
		if per(q) != w || q.Get("updated_since") != qs[0].Get("updated_since") || q.Get("order_by") != "updated_at" ||
			q.Get("order_type") != "asc" || q.Get("include") != "description" || q.Get("page") != "" {
			t.Fatalf("list call %d: %v; want per_page=%d, page 1, the same updated_since, order and include as the first (%v)", i, q, w, qs[0])
		}
	}
	counts := map[int]int{}
	for _, q := range qs {
		counts[per(q)]++
	}
	// After a shrink the next page (re-anchored) tries twice the size.
	if counts[12] < 2 {
		t.Errorf("per_page counts %v; want per_page=12 tried again after pages of 6", counts)
	}
	if counts[1] != 0 {
		t.Errorf("per_page counts %v; no ticket here needs a page of one", counts)
	}
	t.Logf("%d list calls for 40 tickets; per_page counts %v", len(qs), counts)
}

// TestTicketTooLargeEvenAloneIsDeliveredUnreadable: one ticket whose body
// alone exceeds the limit, between normal ones. It is identified by listing
// its position without descriptions and confirmed by viewing it; it comes
// as FeedPage.Unreadable with its id and updated_at and no description, and
// the tickets after it are delivered too.
func TestTicketTooLargeEvenAloneIsDeliveredUnreadable(t *testing.T) {
	sim, rec, c, add := oversizeSim(t, 64<<10)
	small := "<div>printer on floor 3 is jammed</div>"
	var before, after []int64
	for range 3 {
		before = append(before, add(small))
	}
	huge := add("<div>" + strings.Repeat("a very long pasted log line\n", 4000) + "</div>")
	for range 3 {
		after = append(after, add(small))
	}
	var unreadable []freshdesk.FeedPage
	seen := map[int64]int{}
	err := c.ChangesSince(context.Background(), time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), func(p freshdesk.FeedPage) error {
		if p.Unreadable != "" {
			unreadable = append(unreadable, p)
		}
		for _, tk := range p.Tickets {
			seen[tk.ID]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(unreadable) != 1 || len(unreadable[0].Tickets) != 1 {
		t.Fatalf("unreadable pages %+v; want exactly one, of one ticket", unreadable)
	}
	u := unreadable[0]
	st, _ := sim.Ticket(huge)
	if tk := u.Tickets[0]; tk.ID != huge || !tk.UpdatedAt.Equal(st.UpdatedAt) || tk.Description != "" || tk.DescriptionText != "" {
		t.Errorf("unreadable ticket id %d updated_at %s description %d bytes; want ticket %d at %s without description",
			tk.ID, tk.UpdatedAt, len(tk.Description)+len(tk.DescriptionText), huge, st.UpdatedAt)
	}
	if !strings.Contains(u.Unreadable, strconv.FormatInt(huge, 10)) || !strings.Contains(u.Unreadable, "65536-byte limit") {
		t.Errorf("reason %q; want the ticket id and the limit", u.Unreadable)
	}
	for _, id := range append(before, after...) {
		if seen[id] != 1 {
			t.Errorf("ticket %d delivered %d times; want once", id, seen[id])
		}
	}
	rec.mu.Lock()
	views, oversized := rec.views, rec.oversized
	rec.mu.Unlock()
	// Found once: pages shrink around it (oversized while it is on them)
	// until it is read alone, then one view confirms it. Re-reading its
	// second afterwards (the re-anchor on it, the verification of that
	// second) costs description-less listings only: nothing oversized
	// follows the view.
	if views != 1 {
		t.Errorf("%d views; want one to confirm the ticket", views)
	}
	if len(oversized) == 0 || len(oversized) > 10 || oversized[len(oversized)-1] != "view" {
		t.Errorf("oversized responses %v; want a few list pages, then the one view last", oversized)
	}
	t.Logf("%d list calls, oversized responses %v", len(rec.queries()), oversized)

	// The next poll re-reads from a few seconds before it (the overlap):
	// the remembered version is delivered unreadable again without any
	// oversized download.
	rec.mu.Lock()
	rec.oversized = nil
	rec.mu.Unlock()
	again := 0
	err = c.ChangesSince(context.Background(), st.UpdatedAt.Add(-5*time.Second), func(p freshdesk.FeedPage) error {
		if p.Unreadable != "" && p.Tickets[0].ID == huge {
			again++
		}
		return nil
	})
	rec.mu.Lock()
	oversized = rec.oversized
	rec.mu.Unlock()
	if err != nil || again != 1 || len(oversized) != 0 {
		t.Fatalf("re-read: err %v, unreadable deliveries %d, oversized responses %v; want one delivery and none oversized", err, again, oversized)
	}
}

func TestResponseTooLargeIsTyped(t *testing.T) {
	_, _, c, add := oversizeSim(t, 4096)
	id := add(strings.Repeat("x", 8192))
	_, err := c.ViewTicket(context.Background(), id)
	var rtl *freshdesk.ResponseTooLargeError
	if !errors.Is(err, freshdesk.ErrResponseTooLarge) || !errors.As(err, &rtl) || rtl.Limit != 4096 {
		t.Fatalf("err = %v; want ErrResponseTooLarge with the 4096-byte limit", err)
	}
}
