package fetcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// CursorKey is the KV key of an account's polling cursor.
func CursorKey(system, account string) string {
	return "cursor." + pipeline.Token(system) + "." + pipeline.Token(account)
}

// Cursor is the stored polling position: every version updated before
// UpdatedAt has been published and acknowledged (versions at UpdatedAt
// itself may not all have been; the next poll re-reads from UpdatedAt
// minus the overlap).
type Cursor struct {
	UpdatedAt time.Time `json:"updated_at"`
	SavedAt   time.Time `json:"saved_at"`
	Holder    string    `json:"holder"`
}

// cursorState is the cursor with the KV revision it was read or written at
// (0: not stored yet).
type cursorState struct {
	at  time.Time
	rev uint64
}

// ReadCursor returns the stored cursor of the account, or ErrNotFound.
func (f *Fetcher) ReadCursor(ctx context.Context) (Cursor, error) {
	c, _, err := f.readCursor(ctx)
	return c, err
}

func (f *Fetcher) readCursor(ctx context.Context) (Cursor, uint64, error) {
	e, err := f.state.Get(ctx, CursorKey(f.system, f.account))
	if err != nil {
		return Cursor{}, 0, err
	}
	var c Cursor
	if err := json.Unmarshal(e.Value, &c); err != nil {
		return Cursor{}, 0, fmt.Errorf("cursor %s is unreadable: %w", CursorKey(f.system, f.account), err)
	}
	return c, e.Revision, nil
}

// loadCursor reads the cursor, or starts at the account's triage start.
func (f *Fetcher) loadCursor(ctx context.Context) (cursorState, error) {
	c, rev, err := f.readCursor(ctx)
	if errors.Is(err, pipeline.ErrNotFound) {
		o, oerr := f.Origin(ctx)
		if oerr != nil {
			return cursorState{}, oerr
		}
		start := o.At
		if start.IsZero() {
			// No limit recorded (an account polled before origins
			// existed) and the cursor since deleted: start where the
			// setting says rather than at the beginning of time.
			var perr error
			if start, perr = parseStart(f.cfg.Start, f.now()); perr != nil {
				return cursorState{}, fmt.Errorf("AUTOTRIAGE_FETCHER_START: %w", perr)
			}
		}
		f.log.Info("no polling cursor stored; starting", "from", start)
		return cursorState{at: start}, nil
	}
	if err != nil {
		return cursorState{}, err
	}
	return cursorState{at: c.UpdatedAt, rev: rev}, nil
}

// saveCursor stores at with compare-and-set on the revision this holder
// read or wrote last: if anyone else wrote the cursor meanwhile, this
// replica is no longer the poller and gets errLeaseLost.
func (f *Fetcher) saveCursor(ctx context.Context, cs *cursorState, at time.Time) error {
	b, err := json.Marshal(Cursor{UpdatedAt: at.UTC(), SavedAt: f.now().UTC(), Holder: f.holder})
	if err != nil {
		return fmt.Errorf("encode cursor: %w", err)
	}
	key := CursorKey(f.system, f.account)
	var rev uint64
	if cs.rev == 0 {
		rev, err = f.state.Create(ctx, key, b)
	} else {
		rev, err = f.state.Update(ctx, key, b, cs.rev)
	}
	if errors.Is(err, pipeline.ErrConflict) || errors.Is(err, pipeline.ErrExists) {
		return fmt.Errorf("save cursor: %w", errLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	cs.at, cs.rev = at, rev
	return nil
}

// Run polls while this replica holds the account's lease, and contends for
// the lease while it does not, until ctx ends. Losing the lease cancels the
// running poll at once. On return the lease is released (marked expired) so
// another replica takes over without waiting for the TTL.
func (f *Fetcher) Run(ctx context.Context) error {
	retry := f.cfg.LeaseTTL / 3
	for {
		l, ok, err := f.tryAcquire(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.log.Warn("cannot contend for the polling lease", "err", err)
		}
		if !ok {
			f.metrics.leaseHeld.Set(0)
			if !sleepCtx(ctx, retry) {
				return nil
			}
			continue
		}
		f.log.Info("polling lease acquired", "holder", f.holder)
		f.metrics.leaseHeld.Set(1)
		f.held.Store(true)
		lctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var last lease
		wg.Add(1)
		go func() {
			defer wg.Done()
			last = f.keepLease(lctx, l, cancel)
		}()
		err = f.pollLoop(lctx)
		cancel()
		wg.Wait()
		f.held.Store(false)
		f.metrics.leaseHeld.Set(0)
		if err != nil && !errors.Is(err, errLeaseLost) && ctx.Err() == nil && lctx.Err() == nil {
			f.log.Error("polling stopped", "err", err)
		}
		if ctx.Err() != nil {
			if f.releaseOnStop {
				f.release(last)
			}
			return nil
		}
		if errors.Is(err, errLeaseLost) {
			f.log.Warn("another replica wrote the cursor; polling stops")
		}
		if !sleepCtx(ctx, retry) {
			return nil
		}
	}
}

// pollLoop polls every PollInterval until ctx ends (lease lost or shutdown).
func (f *Fetcher) pollLoop(ctx context.Context) error {
	cs, err := f.loadCursor(ctx)
	if err != nil {
		return fmt.Errorf("load cursor: %w", err)
	}
	for {
		err := f.pollOnce(ctx, &cs)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := f.cfg.PollInterval
		if err != nil {
			if errors.Is(err, errLeaseLost) {
				return err
			}
			f.metrics.pollErrors.Inc()
			f.log.Warn("poll failed; the cursor stays at the last acknowledged page", "err", err, "cursor", cs.at)
			if d, ok := ticketsystem.RetryAfter(err); ok && d > wait {
				wait = d
			}
		}
		if !sleepCtx(ctx, wait) {
			return ctx.Err()
		}
	}
}

// PollOnce runs one poll from the stored cursor, without the lease (the
// operator's "poll now" and tests). Do not run it beside Run on the same
// account.
func (f *Fetcher) PollOnce(ctx context.Context) error {
	cs, err := f.loadCursor(ctx)
	if err != nil {
		return fmt.Errorf("load cursor: %w", err)
	}
	return f.pollOnce(ctx, &cs)
}

// pollOnce reads the change feed from the cursor minus the overlap and
// publishes every page; after a page's publishes are all acknowledged it
// moves the cursor to the page's newest updated_at. A failure leaves the
// cursor at the last fully acknowledged page.
func (f *Fetcher) pollOnce(ctx context.Context, cs *cursorState) error {
	f.polling.Lock()
	defer f.polling.Unlock()
	start := time.Now()
	defer func() { f.metrics.pollDuration.Observe(time.Since(start).Seconds()) }()
	since := cs.at.Add(-f.cfg.Overlap)
	o := publishOpts{arrival: v1.Arrival_ARRIVAL_POLL, live: true}
	err := f.src.ChangedSince(ctx, since, func(page []ticketsystem.Ticket) error {
		if _, err := f.handlePage(ctx, page, o); err != nil {
			return err
		}
		newest := cs.at
		for i := range page {
			if page[i].UpdatedAt.After(newest) {
				newest = page[i].UpdatedAt
			}
		}
		if newest.After(cs.at) {
			if err := f.saveCursor(ctx, cs, newest); err != nil {
				return err
			}
		}
		f.metrics.cursorLag.Set(f.now().Sub(cs.at).Seconds())
		return nil
	})
	f.metrics.cursorLag.Set(f.now().Sub(cs.at).Seconds())
	if err != nil {
		return fmt.Errorf("poll since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// handlePage handles every version of a page with bounded concurrency and
// returns the first error after all of them finished: the page counts as
// done only when every one of them was.
func (f *Fetcher) handlePage(ctx context.Context, page []ticketsystem.Ticket, o publishOpts) ([]Result, error) {
	results := make([]Result, len(page))
	errs := make([]error, len(page))
	sem := make(chan struct{}, f.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range page {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i], errs[i] = f.handle(ctx, &page[i], o)
		}()
	}
	wg.Wait()
	var first error
	failed := 0
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 1 {
		return results, fmt.Errorf("%d of %d versions failed, first: %w", failed, len(page), first)
	}
	return results, first
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
