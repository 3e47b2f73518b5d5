package fetcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// LeaseKey is the KV key of an account's polling lease.
func LeaseKey(system, account string) string {
	return "lease." + pipeline.Token(system) + "." + pipeline.Token(account)
}

// leaseValue is the stored lease. Expires is the holder's wall clock plus
// the TTL: contenders compare it with their own clock, so replica clocks
// must agree to well within the TTL (NTP does that).
type leaseValue struct {
	Holder   string    `json:"holder"`
	Expires  time.Time `json:"expires"`
	Acquired time.Time `json:"acquired"`
}

// lease is a held lease: the KV revision of the holder's last write.
type lease struct {
	rev      uint64
	expires  time.Time
	acquired time.Time
}

var errLeaseLost = errors.New("polling lease lost")

// tryAcquire takes the lease if it is free, expired or already ours. ok is
// false when another live replica holds it. Every write is a
// compare-and-set on the revision read, so two contenders cannot both win.
func (f *Fetcher) tryAcquire(ctx context.Context) (l lease, ok bool, err error) {
	key := LeaseKey(f.system, f.account)
	now := f.now()
	val := leaseValue{Holder: f.holder, Expires: now.Add(f.cfg.LeaseTTL), Acquired: now}
	b, err := json.Marshal(val)
	if err != nil {
		return lease{}, false, fmt.Errorf("encode lease: %w", err)
	}
	e, err := f.state.Get(ctx, key)
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		rev, err := f.state.Create(ctx, key, b)
		if errors.Is(err, pipeline.ErrExists) || errors.Is(err, pipeline.ErrConflict) {
			return lease{}, false, nil
		}
		if err != nil {
			return lease{}, false, fmt.Errorf("create lease: %w", err)
		}
		return lease{rev: rev, expires: val.Expires, acquired: now}, true, nil
	case err != nil:
		return lease{}, false, fmt.Errorf("read lease: %w", err)
	}
	var cur leaseValue
	if err := json.Unmarshal(e.Value, &cur); err != nil {
		f.log.Warn("unreadable polling lease; taking it over", "err", err)
	} else if cur.Holder != f.holder && now.Before(cur.Expires) {
		return lease{}, false, nil
	}
	rev, err := f.state.Update(ctx, key, b, e.Revision)
	if errors.Is(err, pipeline.ErrConflict) || errors.Is(err, pipeline.ErrExists) {
		return lease{}, false, nil
	}
	if err != nil {
		return lease{}, false, fmt.Errorf("take over lease: %w", err)
	}
	return lease{rev: rev, expires: val.Expires, acquired: now}, true, nil
}

// renew extends a held lease; errLeaseLost when another replica wrote it.
func (f *Fetcher) renew(ctx context.Context, l lease) (lease, error) {
	now := f.now()
	val := leaseValue{Holder: f.holder, Expires: now.Add(f.cfg.LeaseTTL), Acquired: l.acquired}
	b, err := json.Marshal(val)
	if err != nil {
		return l, fmt.Errorf("encode lease: %w", err)
	}
	rev, err := f.state.Update(ctx, LeaseKey(f.system, f.account), b, l.rev)
	if errors.Is(err, pipeline.ErrConflict) || errors.Is(err, pipeline.ErrNotFound) {
		return l, errLeaseLost
	}
	if err != nil {
		return l, fmt.Errorf("renew lease: %w", err)
	}
	return lease{rev: rev, expires: val.Expires, acquired: l.acquired}, nil
}

// release marks the lease expired so another replica can take it at once.
// It runs after Run's context ended, so it gets at most 5s and never more
// than the shutdown has left.
func (f *Fetcher) release(l lease) {
	base := context.Background()
	if f.stopCtx != nil {
		var cancel context.CancelFunc
		base, cancel = f.stopCtx()
		defer cancel()
	}
	ctx, cancel := context.WithTimeout(base, 5*time.Second)
	defer cancel()
	val := leaseValue{Holder: f.holder, Expires: f.now().Add(-time.Second), Acquired: l.acquired}
	b, _ := json.Marshal(val)
	if _, err := f.state.Update(ctx, LeaseKey(f.system, f.account), b, l.rev); err != nil {
		f.log.Info("lease not released; it expires by itself", "err", err)
		return
	}
	f.log.Info("polling lease released")
}

// keepLease renews l every third of the TTL until ctx ends, and calls lost
// as soon as the lease is taken by another replica or the holder's own
// expiry passes without a successful renewal (NATS unreachable): the caller
// stops polling at once. It returns the last lease held.
func (f *Fetcher) keepLease(ctx context.Context, l lease, lost func()) lease {
	every := f.cfg.LeaseTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return l
		case <-t.C:
		}
		// Give up a little before the expiry, so a contender that takes over
		// right at the expiry never overlaps with us.
		deadline := l.expires.Add(-f.cfg.LeaseTTL / 10)
		rctx, cancel := context.WithDeadline(ctx, deadline)
		nl, err := f.renew(rctx, l)
		cancel()
		if err == nil {
			l = nl
			continue
		}
		if ctx.Err() != nil {
			return l
		}
		if errors.Is(err, errLeaseLost) || !f.now().Before(deadline) {
			f.log.Warn("polling lease lost; polling stops", "err", err)
			lost()
			return l
		}
		f.log.Warn("lease renewal failed; retrying", "err", err)
	}
}
