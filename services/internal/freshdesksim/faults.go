package freshdesksim

import (
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Fault is injected on an endpoint. Checks run in this order: Latency (always,
// before anything else), Burst, ResetRate, ErrorRate.
type Fault struct {
	ErrorRate float64       // probability of answering Status instead of the real response
	Status    int           // status for ErrorRate and Burst (default 500)
	Latency   time.Duration // added real-time delay before answering
	ResetRate float64       // probability of closing the TCP connection without a response (hijack)
	Burst     int           // the next Burst requests fail with Status
}

type faultSet struct {
	mu  sync.Mutex
	m   map[string]*Fault
	rng *rand.Rand
}

// SetFault sets the fault for an endpoint ("tickets.list", "tickets.view",
// "tickets.update", "tickets.create", "tickets.notes", "tickets.conversations",
// "search", "groups", "ticket_fields", "agents", or "*" for all). An endpoint's
// own fault takes precedence over "*". A zero Fault clears it.
func (s *Sim) SetFault(endpoint string, f Fault) {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.m == nil {
		fs.m = map[string]*Fault{}
	}
	if f == (Fault{}) {
		delete(fs.m, endpoint)
		return
	}
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	fs.m[endpoint] = &f
}

// Faults returns the configured faults (Burst shows what is left).
func (s *Sim) Faults() map[string]Fault {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := map[string]Fault{}
	for k, v := range fs.m {
		out[k] = *v
	}
	return out
}

type faultAction int

const (
	faultNone faultAction = iota
	faultError
	faultReset
)

func (fs *faultSet) decide(ep string) (time.Duration, faultAction, int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[ep]
	if f == nil {
		f = fs.m["*"]
	}
	if f == nil {
		return 0, faultNone, 0
	}
	switch {
	case f.Burst > 0:
		f.Burst--
		return f.Latency, faultError, f.Status
	case f.ResetRate > 0 && fs.rng.Float64() < f.ResetRate:
		return f.Latency, faultReset, 0
	case f.ErrorRate > 0 && fs.rng.Float64() < f.ErrorRate:
		return f.Latency, faultError, f.Status
	}
	return f.Latency, faultNone, 0
}

// applyFault runs the configured fault. It returns false when the request was
// answered (or the connection dropped) by the fault.
func (s *Sim) applyFault(rec *statusRecorder, r *http.Request, ep string) bool {
	lat, act, status := s.faults.decide(ep)
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		case <-s.ctx.Done():
			t.Stop()
		}
	}
	switch act {
	case faultReset:
		if conn, _, err := http.NewResponseController(rec).Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // send RST instead of FIN
			}
			_ = conn.Close()
			rec.status = 0
			return false
		}
		// Not hijackable (HTTP/2): fall back to a 502-like failure.
		writeJSON(rec, http.StatusBadGateway, nil)
		return false
	case faultError:
		writeCodeMessage(rec, status, "simulated_fault", "Injected failure from the simulator.")
		return false
	}
	return true
}
