package writer

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// usage is what the ticket-system calls made for one prediction cost. The
// transport returned by MeterCredits adds to the usage carried by a
// request's context.
type usage struct {
	credits     atomic.Int64
	rateLimited atomic.Int64
	requests    atomic.Int64
}

type usageKey struct{}

func withUsage(ctx context.Context, u *usage) context.Context {
	return context.WithValue(ctx, usageKey{}, u)
}

func usageFrom(ctx context.Context) *usage {
	u, _ := ctx.Value(usageKey{}).(*usage)
	return u
}

// MeterCredits wraps an HTTP transport so that the writer can attribute API
// credits (X-RateLimit-Used-CurrentRequest, as Freshdesk reports them) and
// 429 answers to the prediction whose handling made the request. Give it to
// the ticket-system client (freshdesk.Config.HTTPClient); without it,
// outcomes report 0 credits. A nil base means http.DefaultTransport.
//
// It exists because the Freshdesk client only keeps account-wide counters,
// which concurrent handlers cannot split between them.
func MeterCredits(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return meter{base: base}
}

type meter struct{ base http.RoundTripper }

func (m meter) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := m.base.RoundTrip(req)
	u := usageFrom(req.Context())
	if u == nil {
		return res, err
	}
	u.requests.Add(1)
	if err != nil || res == nil {
		return res, err
	}
	if v := strings.TrimSpace(res.Header.Get("X-Ratelimit-Used-Currentrequest")); v != "" {
		if n, perr := strconv.ParseInt(v, 10, 64); perr == nil && n > 0 {
			u.credits.Add(n)
		}
	}
	if res.StatusCode == http.StatusTooManyRequests {
		u.rateLimited.Add(1)
	}
	return res, err
}
