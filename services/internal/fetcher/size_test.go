package fetcher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/freshdesksim"
	"github.com/autotriage/autotriage/services/internal/freshdesksim/helpdeskgen"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// largeHelpdesk fills s with generated e-mails of 150 KB to 1.5 MB (until
// they add up to more than 10 MiB: any 100-ticket page holding them
// exceeds the client's 8 MiB limit, and at least two carry more than
// classify.MaxRawBytes of text), normal generated tickets between them,
// and, in the middle, one forwarded thread of over 9 MiB that cannot be
// read even alone. It returns the id of that one.
func largeHelpdesk(t *testing.T, s *sim) (huge int64) {
	t.Helper()
	emails := helpdeskgen.NewWithOptions(11, helpdeskgen.Options{EmailShare: 1})
	normal := helpdeskgen.New(12)
	var large []helpdeskgen.Ticket
	total, textHeavy := 0, 0
	var biggest string
	for total <= 10<<20 || textHeavy < 2 {
		tk := emails.Next()
		if n := len(tk.Description); n < 150<<10 || n > 1500<<10 {
			continue
		}
		large = append(large, tk)
		total += len(tk.Description) + len(tk.DescriptionText)
		if len(tk.DescriptionText) > classify.MaxRawBytes+(32<<10) {
			textHeavy++
		}
		if len(tk.Description) > len(biggest) {
			biggest = tk.Description
		}
	}
	add := func(tk helpdeskgen.Ticket) int64 {
		id, err := s.AddTicket(freshdesksim.NewTicket{Subject: tk.Subject, Description: tk.Description,
			Email: tk.RequesterEmail, Name: tk.RequesterName, Source: tk.Source})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i, tk := range large {
		add(normal.Next())
		add(tk)
		if i == len(large)/2 {
			var b strings.Builder
			b.WriteString("<div>Forwarding the whole thread with every screenshot, as asked.</div>")
			for b.Len() < 9<<20 {
				b.WriteString(biggest)
			}
			huge = add(helpdeskgen.Ticket{Subject: "Fwd: everything about the outage", Description: b.String(),
				RequesterEmail: "ops@partner.example", RequesterName: "Ops", Source: 1})
		}
		add(normal.Next())
	}
	t.Logf("helpdesk: %d large e-mails (%d MiB, %d with more than %d bytes of text), %d normal tickets, ticket %d of %d MiB",
		len(large), total>>20, textHeavy, classify.MaxRawBytes, 2*len(large), huge, 9)
	return huge
}

// TestPollNeverStallsOnSize is the reliability issue's "polling never
// stalls on size": against the simulator over HTTP with the client's real
// 8 MiB limit and embedded NATS, a helpdesk whose 100-ticket pages exceed
// the limit, with a ticket too large to read even alone. One poll
// publishes every other ticket (descriptions over the classifier's input
// limit cut at a rune boundary and flagged, with their original size),
// dead-letters the unreadable one with its id and reason, counts and moves
// the cursor to the newest version. The next poll re-reads the overlap
// without re-publishing or re-dead-lettering anything.
func TestPollNeverStallsOnSize(t *testing.T) {
	if testing.Short() {
		t.Skip("moves tens of MiB through the simulator")
	}
	b := startBus(t)
	s := startSim(t, freshdesksim.Config{}, freshdesksim.GenerateOptions{})
	huge := largeHelpdesk(t, s)
	cfg := testConfig()
	cfg.Overlap = time.Hour // the second poll re-reads everything
	f := newFetcher(t, b, cfg, fetcherOpts{src: s.adapter, catalog: s.adapter})
	ctx := context.Background()

	if err := f.PollOnce(ctx); err != nil {
		t.Fatalf("poll: %v", err)
	}
	published := map[int64]*v1.Ticket{}
	for _, tk := range b.tickets(t) {
		if published[tk.Id] != nil {
			t.Fatalf("ticket %d published twice", tk.Id)
		}
		published[tk.Id] = tk
	}
	dlq := b.messages(t, pipeline.StreamDLQ)
	if len(dlq) != 1 {
		t.Fatalf("%d dead letters; want exactly the unreadable ticket", len(dlq))
	}
	d := dlq[0]
	hugeVersion, _ := s.Ticket(huge)
	if got := first(d.Header, HeaderTicketID); got != strconv.FormatInt(huge, 10) {
		t.Errorf("dead letter names ticket %q; want %d", got, huge)
	}
	if got := first(d.Header, HeaderTicketUpdatedAt); got != hugeVersion.UpdatedAt.UTC().Format(time.RFC3339) {
		t.Errorf("dead letter names version %q; want %s", got, hugeVersion.UpdatedAt)
	}
	if reason := first(d.Header, pipeline.HeaderError); !strings.Contains(reason, "too large") || !strings.Contains(reason, "8388608-byte limit") {
		t.Errorf("dead-letter reason %q; want too large and the limit", reason)
	}
	if first(d.Header, pipeline.HeaderStage) != Stage || len(d.Data) > 64<<10 {
		t.Errorf("dead letter stage %q, %d bytes; want the fetcher's, without the body", first(d.Header, pipeline.HeaderStage), len(d.Data))
	}
	if n := testutil.ToFloat64(f.metrics.unreadable.WithLabelValues("poll")); n != 1 {
		t.Errorf("unreadable counter %v; want 1", n)
	}

	truncated := 0
	var newest time.Time
	for _, id := range s.TicketIDs() {
		st, _ := s.Ticket(id)
		if st.UpdatedAt.After(newest) {
			newest = st.UpdatedAt
		}
		if id == huge {
			if published[id] != nil {
				t.Errorf("unreadable ticket %d was published", id)
			}
			continue
		}
		p := published[id]
		if p == nil {
			t.Errorf("ticket %d neither published nor dead-lettered", id)
			continue
		}
		text := st.DescriptionText
		if p.DescriptionBytes != int64(len(text)) {
			t.Errorf("ticket %d: description_bytes %d; want %d", id, p.DescriptionBytes, len(text))
		}
		if len(text) <= classify.MaxRawBytes {
			if p.DescriptionTruncated || p.DescriptionText != text {
				t.Errorf("ticket %d: %d-byte description changed or flagged", id, len(text))
			}
			continue
		}
		truncated++
		if !p.DescriptionTruncated || len(p.DescriptionText) > classify.MaxRawBytes || len(p.DescriptionText) < classify.MaxRawBytes-utf8.UTFMax ||
			!utf8.ValidString(p.DescriptionText) || !strings.HasPrefix(text, p.DescriptionText) {
			t.Errorf("ticket %d: %d-byte description published as %d bytes (flag %v); want its first %d bytes cut at a rune boundary",
				id, len(text), len(p.DescriptionText), p.DescriptionTruncated, classify.MaxRawBytes)
		}
	}
	if truncated < 2 {
		t.Errorf("%d descriptions cut; the helpdesk was built with at least 2 over the limit", truncated)
	}
	cur, err := f.ReadCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.UpdatedAt.Equal(newest) {
		t.Fatalf("cursor %s; want the newest version %s (past the unreadable ticket)", cur.UpdatedAt, newest)
	}
	t.Logf("published %d (%d cut), dead-lettered 1, cursor at the newest version", len(published), truncated)

	// The next poll re-reads the whole window (overlap of an hour): it
	// finishes, and the stream and the DLQ keep one copy of each version.
	if err := f.PollOnce(ctx); err != nil {
		t.Fatalf("second poll: %v", err)
	}
	if n := b.count(t, pipeline.StreamTickets); n != uint64(len(published)) {
		t.Errorf("TICKETS holds %d after the re-read; want %d", n, len(published))
	}
	if n := b.count(t, pipeline.StreamDLQ); n != 1 {
		t.Errorf("DLQ holds %d after the re-read; want 1", n)
	}

	// A webhook for the unreadable ticket is answered (not retried for
	// ever) and leaves it to the poll; one for a large readable ticket
	// publishes it cut like the poll does.
	hs := httptest.NewServer(f.WebhookHandler())
	t.Cleanup(hs.Close)
	body := func(id int64) []byte {
		return []byte(`{"freshdesk_webhook":{"ticket_id":"` + strconv.FormatInt(id, 10) + `","triggered_event":"{ticket_action:created}"}}`)
	}
	if r := post(t, hs.URL+WebhookPath, body(huge), authed); r.code != 200 || r.body.Status != "ignored" {
		t.Errorf("webhook for the unreadable ticket: %d %+v; want 200 ignored", r.code, r.body)
	}
	for id, p := range published {
		if !p.DescriptionTruncated {
			continue
		}
		if err := s.AgentUpdate(id, map[string]any{"priority": 3}); err != nil {
			t.Fatal(err)
		}
		if r := post(t, hs.URL+WebhookPath, body(id), authed); r.code != 202 || r.body.Status != StatusPublished {
			t.Fatalf("webhook for large ticket %d: %d %+v", id, r.code, r.body)
		}
		var got *v1.Ticket
		for _, tk := range b.tickets(t) {
			if tk.Id == id && tk.Arrival == v1.Arrival_ARRIVAL_WEBHOOK {
				got = tk
			}
		}
		if got == nil || !got.DescriptionTruncated || len(got.DescriptionText) > classify.MaxRawBytes || got.DescriptionBytes != p.DescriptionBytes {
			t.Fatalf("webhook version of ticket %d: %+v; want it cut and flagged like the poll's", id, got)
		}
		break
	}
}

// TestShrunkPagesAcrossPolls: with a small response limit a normal poll
// reads every generated e-mail ticket through shrunk pages, and the list
// calls the simulator saw start at per_page=100 and go down by halves.
func TestShrunkPagesAcrossPolls(t *testing.T) {
	b := startBus(t)
	sm, err := freshdesksim.New(freshdesksim.Config{Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sm.Close() })
	if err := sm.Generate(freshdesksim.GenerateOptions{New: 120, EmailShare: 0.5}); err != nil {
		t.Fatal(err)
	}
	var perPage []string
	hs := httptest.NewServer(recordList(sm, &perPage))
	t.Cleanup(hs.Close)
	c, err := freshdesk.New(freshdesk.Config{BaseURL: hs.URL, APIKey: "sim-admin-key", MaxRetries: -1, MaxResponseBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ad := freshdesk.NewAdapter(c)
	f := newFetcher(t, b, testConfig(), fetcherOpts{src: ad, catalog: ad})
	if err := f.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	dead := b.count(t, pipeline.StreamDLQ)
	if n := b.count(t, pipeline.StreamTickets); n+dead != 120 {
		t.Fatalf("published %d and dead-lettered %d of 120 tickets", n, dead)
	}
	if len(perPage) < 2 || perPage[0] != "100" || perPage[1] != "50" {
		t.Fatalf("per_page of the list calls %v; want 100 then 50", perPage)
	}
	t.Logf("%d list calls; %d dead-lettered as unreadable at a 256 KiB limit", len(perPage), dead)
}

// first returns the first value of a header, "" without one.
func first(h map[string][]string, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// recordList serves h and appends the per_page of every ticket list call
// with descriptions to out.
func recordList(h http.Handler, out *[]string) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v2/tickets" && r.URL.Query().Get("include") == "description" {
			mu.Lock()
			*out = append(*out, r.URL.Query().Get("per_page"))
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}
