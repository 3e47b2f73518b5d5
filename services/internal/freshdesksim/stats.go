package freshdesksim

import (
	"maps"
	"sync"
)

// EndpointStats counts the requests of one endpoint.
type EndpointStats struct {
	Calls    int64         `json:"calls"`
	Credits  int64         `json:"credits"`
	ByStatus map[int]int64 `json:"by_status"` // HTTP status -> count; 0 = connection reset by a fault
}

// WebhookStats counts webhook deliveries.
type WebhookStats struct {
	Queued    int64 `json:"queued"`    // events accepted for delivery
	Attempts  int64 `json:"attempts"`  // HTTP attempts, retries included
	Delivered int64 `json:"delivered"` // events acknowledged with 2xx
	Failed    int64 `json:"failed"`    // failed attempts
	Dropped   int64 `json:"dropped"`   // events given up after the last retry, or on a full queue
}

// Stats is a snapshot of the simulator's counters.
type Stats struct {
	Endpoints   map[string]EndpointStats `json:"endpoints"`
	Total       EndpointStats            `json:"total"`
	RateLimited int64                    `json:"rate_limited"` // 429 responses
	Webhooks    WebhookStats             `json:"webhooks"`
}

type statsCollector struct {
	mu    sync.Mutex
	eps   map[string]*EndpointStats
	total EndpointStats
	r429  int64
}

func (c *statsCollector) init() {
	c.mu.Lock()
	c.eps = map[string]*EndpointStats{}
	c.total = EndpointStats{ByStatus: map[int]int64{}}
	c.r429 = 0
	c.mu.Unlock()
}

func (c *statsCollector) record(ep string, credits, status int) {
	c.mu.Lock()
	e := c.eps[ep]
	if e == nil {
		e = &EndpointStats{ByStatus: map[int]int64{}}
		c.eps[ep] = e
	}
	e.Calls++
	e.Credits += int64(credits)
	e.ByStatus[status]++
	c.total.Calls++
	c.total.Credits += int64(credits)
	c.total.ByStatus[status]++
	if status == 429 {
		c.r429++
	}
	c.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (s *Sim) Stats() Stats {
	c := &s.stats
	c.mu.Lock()
	out := Stats{Endpoints: map[string]EndpointStats{}, RateLimited: c.r429}
	for k, v := range c.eps {
		out.Endpoints[k] = EndpointStats{Calls: v.Calls, Credits: v.Credits, ByStatus: maps.Clone(v.ByStatus)}
	}
	out.Total = EndpointStats{Calls: c.total.Calls, Credits: c.total.Credits, ByStatus: maps.Clone(c.total.ByStatus)}
	c.mu.Unlock()
	if s.hooks != nil {
		out.Webhooks = s.hooks.snapshot()
	}
	return out
}

// ResetStats zeroes the request and webhook counters.
func (s *Sim) ResetStats() {
	s.stats.init()
	if s.hooks != nil {
		s.hooks.reset()
	}
}
