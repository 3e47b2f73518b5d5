package freshdesksim

import (
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// planLimits are per-minute credit allowances. A zero sub-limit means none.
type planLimits struct {
	total, create, update, list int
}

// plans follows the rate-limit table of the reference (section 8). "unlimited"
// is a very large allowance: headers are still sent but 429 never happens.
var plans = map[string]planLimits{
	"trial":      {total: 50},
	"growth":     {total: 200, create: 80, update: 80, list: 20},
	"pro":        {total: 400, create: 160, update: 160, list: 100},
	"enterprise": {total: 700, create: 280, update: 280, list: 200},
	"unlimited":  {total: 1_000_000_000},
}

// rateLimiter is a fixed window of one simulated minute, shared by the whole
// account. Credits count against the total and against the sub-limit of the
// endpoint's kind (a tickets list with one include costs 3 of both).
// Unverified: whether sub-limits count calls or credits; credits were chosen.
type rateLimiter struct {
	mu                         sync.Mutex
	window                     int64
	used, create, update, list int
}

type rateDecision struct {
	ok         bool
	total      int
	remaining  int
	retryAfter int // real seconds, >= 1
}

func (rl *rateLimiter) roll(now time.Time) {
	w := now.Unix() / 60
	if now.Unix() < 0 {
		w = int64(math.Floor(float64(now.Unix()) / 60))
	}
	if w != rl.window {
		rl.window, rl.used, rl.create, rl.update, rl.list = w, 0, 0, 0, 0
	}
}

// peek reports the bucket without spending (used for 401 responses).
func (rl *rateLimiter) peek(s *Sim, now time.Time) rateDecision {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.roll(now)
	return rateDecision{ok: true, total: s.limit.total, remaining: max(0, s.limit.total-rl.used)}
}

// take spends cost credits for endpoint ep, or refuses with the number of real
// seconds until the window ends (scaled by TimeScale, at least 1).
func (rl *rateLimiter) take(s *Sim, ep string, cost int, now time.Time) rateDecision {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.roll(now)
	lim := s.limit
	d := rateDecision{total: lim.total}
	var sub *int
	subLim := 0
	switch ep {
	case "tickets.list":
		sub, subLim = &rl.list, lim.list
	case "tickets.update":
		sub, subLim = &rl.update, lim.update
	case "tickets.create":
		sub, subLim = &rl.create, lim.create
	}
	if rl.used+cost > lim.total || (sub != nil && subLim > 0 && *sub+cost > subLim) {
		left := float64((rl.window+1)*60) - float64(now.UnixNano())/1e9
		ra := int(math.Ceil(left / s.cfg.TimeScale))
		d.retryAfter = max(1, ra)
		d.remaining = max(0, lim.total-rl.used)
		return d
	}
	rl.used += cost
	if sub != nil {
		*sub += cost
	}
	d.ok = true
	d.remaining = lim.total - rl.used
	return d
}

// requestCost is the credit cost of a request: 1, plus 2 per include on the
// tickets list, plus 1 per include on a ticket view.
// Unverified: the cost of a search call; 1 was chosen.
func requestCost(ep string, r *http.Request) int {
	per := 0
	switch ep {
	case "tickets.list":
		per = 2
	case "tickets.view":
		if r.Method == http.MethodGet {
			per = 1
		}
	default:
		return 1
	}
	inc := r.URL.Query().Get("include")
	if inc == "" {
		return 1
	}
	n := 0
	for p := range strings.SplitSeq(inc, ",") {
		if strings.TrimSpace(p) != "" {
			n++
		}
	}
	return 1 + per*n
}
