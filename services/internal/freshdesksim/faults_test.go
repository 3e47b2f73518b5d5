package freshdesksim

import (
	"net/http"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	e := newEnv(t, Config{Seed: 3})
	if err := e.sim.Generate(GenerateOptions{New: 1}); err != nil {
		t.Fatal(err)
	}
	t.Run("burst", func(t *testing.T) {
		e.sim.SetFault("tickets.list", Fault{Burst: 2, Status: 503})
		for i, want := range []int{503, 503, 200} {
			if r := e.get("/api/v2/tickets"); r.status != want {
				t.Fatalf("request %d: %d, want %d", i, r.status, want)
			}
		}
		if r := e.get("/api/v2/tickets/1"); r.status != 200 {
			t.Fatal("fault leaked to another endpoint")
		}
	})
	t.Run("error rate 1 on all, endpoint override", func(t *testing.T) {
		e.sim.SetFault("*", Fault{ErrorRate: 1})
		e.sim.SetFault("groups", Fault{Latency: time.Millisecond})
		if r := e.get("/api/v2/tickets/1"); r.status != 500 {
			t.Fatalf("got %d, want 500", r.status)
		}
		if r := e.get("/api/v2/groups"); r.status != 200 {
			t.Fatalf("groups with own fault: %d", r.status)
		}
		e.sim.SetFault("*", Fault{})
		e.sim.SetFault("groups", Fault{})
		if r := e.get("/api/v2/tickets/1"); r.status != 200 {
			t.Fatalf("after clearing: %d", r.status)
		}
	})
	t.Run("error rate is a rate", func(t *testing.T) {
		e.sim.SetFault("ticket_fields", Fault{ErrorRate: 0.5})
		fails := 0
		for range 200 {
			if e.get("/api/v2/ticket_fields").status == 500 {
				fails++
			}
		}
		e.sim.SetFault("ticket_fields", Fault{})
		if fails < 60 || fails > 140 {
			t.Fatalf("%d/200 failures at rate 0.5", fails)
		}
	})
	t.Run("connection reset", func(t *testing.T) {
		e.sim.ResetStats()
		e.sim.SetFault("tickets.view", Fault{ResetRate: 1})
		defer e.sim.SetFault("tickets.view", Fault{})
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v2/tickets/1", nil)
		req.SetBasicAuth(adminKey, "X")
		resp, err := e.srv.Client().Do(req)
		if err == nil {
			_ = resp.Body.Close()
			t.Fatalf("want a transport error, got %d", resp.StatusCode)
		}
		// net/http retries an idempotent GET once on a reset connection.
		if st := e.sim.Stats().Endpoints["tickets.view"]; st.ByStatus[0] < 1 || st.ByStatus[200] != 0 {
			t.Fatalf("reset not counted: %+v", st)
		}
	})
}
