package freshdesksim

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// benchEnv serves a sim with 2,000 history and 500 new tickets over real HTTP.
func benchEnv(b *testing.B) (*env, *http.Client) {
	e := newEnv(b, Config{})
	if err := e.sim.Generate(GenerateOptions{History: 2000, New: 500}); err != nil {
		b.Fatal(err)
	}
	c := e.srv.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	return e, c
}

func benchDo(b *testing.B, c *http.Client, req *http.Request) {
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkListTickets lists 30 tickets per request (the default page) with
// updated_since, the polling query of the fetcher, from parallel clients.
func BenchmarkListTickets(b *testing.B) {
	e, c := benchEnv(b)
	url := e.srv.URL + "/api/v2/tickets?updated_since=2000-01-01&order_by=updated_at&order_type=asc&per_page=30"
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.SetBasicAuth(adminKey, "X")
			benchDo(b, c, req)
		}
	})
}

// BenchmarkListTicketsDefault is the default-window, created_at-ordered list.
func BenchmarkListTicketsDefault(b *testing.B) {
	e, c := benchEnv(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2/tickets", nil)
			req.SetBasicAuth(adminKey, "X")
			benchDo(b, c, req)
		}
	})
}

// BenchmarkUpdateTicket sets group, type, priority and tags, as the writer does.
func BenchmarkUpdateTicket(b *testing.B) {
	e, c := benchEnv(b)
	gid, _ := e.sim.GroupID("Billing")
	body := fmt.Sprintf(`{"group_id":%d,"type":"Question","priority":2,"tags":["autotriage"]}`, gid)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/api/v2/tickets/%d", e.srv.URL, 2001+i%500), strings.NewReader(body))
			req.SetBasicAuth(adminKey, "X")
			req.Header.Set("Content-Type", "application/json")
			benchDo(b, c, req)
		}
	})
}
