package freshdesk_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autotriage/autotriage/services/internal/freshdesk"
	"github.com/autotriage/autotriage/services/internal/ticketsystem/ticketsystemtest"
)

// replayServer serves the recorded fixtures, byte for byte, as a read-only
// Freshdesk: the two recorded list pages (re-paged by updated_since so the
// change feed works), the recorded ticket views, and the conversations.
func replayServer(t *testing.T) http.Handler {
	var list []json.RawMessage
	for _, f := range []string{"list_tickets_page1.json", "list_tickets_page2.json"} {
		var page []json.RawMessage
		if err := json.Unmarshal(fixture(t, f), &page); err != nil {
			t.Fatal(err)
		}
		list = append(list, page...)
	}
	type rec struct {
		ID        int64     `json:"id"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	meta := make([]rec, len(list))
	byID := map[int64][]byte{}
	for i, raw := range list {
		if err := json.Unmarshal(raw, &meta[i]); err != nil {
			t.Fatal(err)
		}
		byID[meta[i].ID] = raw
	}
	byID[14] = fixture(t, "view_ticket_custom_fields.json")
	byID[1] = fixture(t, "view_ticket_with_stats_requester.json")
	convs := fixture(t, "list_conversations.json")
	const pageSize = 7
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		path := strings.TrimPrefix(r.URL.Path, "/api/v2/")
		switch {
		case path == "tickets":
			q := r.URL.Query()
			since, _ := time.Parse(time.RFC3339, q.Get("updated_since"))
			idx := []int{}
			for i, m := range meta {
				if !m.UpdatedAt.Before(since) {
					idx = append(idx, i)
				}
			}
			sort.SliceStable(idx, func(a, b int) bool { return meta[idx[a]].UpdatedAt.Before(meta[idx[b]].UpdatedAt) })
			page, _ := strconv.Atoi(q.Get("page"))
			page = max(page, 1)
			lo, hi := min((page-1)*pageSize, len(idx)), min(page*pageSize, len(idx))
			if hi < len(idx) {
				q.Set("page", strconv.Itoa(page+1))
				w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?%s>; rel="next"`, r.Host, r.URL.Path, q.Encode()))
			}
			parts := make([]string, 0, hi-lo)
			for _, i := range idx[lo:hi] {
				parts = append(parts, string(list[i]))
			}
			fmt.Fprintf(w, "[%s]", strings.Join(parts, ","))
		case path == "tickets/1/conversations":
			w.Write(convs)
		case strings.HasPrefix(path, "tickets/"):
			id, _ := strconv.ParseInt(strings.TrimPrefix(path, "tickets/"), 10, 64)
			if b, ok := byID[id]; ok && r.Method == http.MethodGet {
				w.Write(b)
				return
			}
			w.WriteHeader(http.StatusNotFound) // empty body, as Freshdesk does
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
}

func TestContractRecordedFixtures(t *testing.T) {
	sharedDir(t)
	ticketsystemtest.Run(t, func(t *testing.T) ticketsystemtest.Harness {
		srv := httptest.NewServer(replayServer(t))
		t.Cleanup(srv.Close)
		c, err := freshdesk.New(freshdesk.Config{APIKey: testKey, BaseURL: srv.URL, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return ticketsystemtest.Harness{
			Adapter: freshdesk.NewAdapter(c),
			Caps:    ticketsystemtest.Capabilities{ChangeFeed: true},
			Known:   []int64{14, 1, 29, 48},
			InFeed:  []int64{29, 38, 39, 48}, // both recorded list pages
		}
	})
}
