package fetcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// BackfillOptions shape a backfill run.
type BackfillOptions struct {
	// BatchID groups the run's versions (Ticket.batch_id) and makes their
	// message ids distinct from live ones and from other runs. Default:
	// "bf-" and the start time.
	BatchID string
	// Live publishes the versions without shadow_only, so the writer may
	// act on them. Default false: shadow mode, nothing is written back.
	Live bool
	// Filter applies the triage filter; by default every ticket in the range
	// is sent (spam and deleted ones excepted), which is what an evaluation
	// against past human decisions needs.
	Filter bool
	// Progress, when set, is called after every page.
	Progress func(BackfillProgress)
}

// BackfillProgress counts what a backfill has done so far.
type BackfillProgress struct {
	Pages      int
	Seen       int
	Published  int
	Duplicates int // already sent by an earlier run with the same BatchID
	Skipped    int
	Invalid    int
	// Through is the newest updated_at handled so far.
	Through time.Time
}

// BackfillReport is the result of a backfill run.
type BackfillReport struct {
	BatchID string
	From    time.Time
	To      time.Time
	BackfillProgress
}

var errBackfillDone = errors.New("backfill: past the end of the range")

// Backfill sends the tickets updated in [from, to) through the pipeline,
// marked ARRIVAL_BACKFILL, shadow_only unless opts.Live, with the run's
// batch id, under message ids "backfill:<batch>:<system>:<account>:<id>:<updated_at>"
// (so live versions do not swallow them, and re-running a batch does not
// send a version twice). The change feed knows only each ticket's current
// version, so a ticket updated again after to is not included. It does not
// touch the polling cursor or the lease. On error the report says how far
// it got; re-running the same BatchID resumes without duplicates.
func (f *Fetcher) Backfill(ctx context.Context, from, to time.Time, opts BackfillOptions) (BackfillReport, error) {
	if !to.After(from) {
		return BackfillReport{}, fmt.Errorf("backfill: empty range [%s, %s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if opts.BatchID == "" {
		opts.BatchID = "bf-" + f.now().UTC().Format("20060102T150405Z")
	}
	rep := BackfillReport{BatchID: opts.BatchID, From: from, To: to}
	o := publishOpts{
		arrival:    v1.Arrival_ARRIVAL_BACKFILL,
		idPrefix:   "backfill:" + opts.BatchID + ":",
		shadowOnly: !opts.Live,
		batchID:    opts.BatchID,
		filter:     opts.Filter,
	}
	f.log.Info("backfill started", "batch", opts.BatchID, "from", from, "to", to, "shadow_only", !opts.Live)
	err := f.src.ChangedSince(ctx, from, func(page []ticketsystem.Ticket) error {
		rep.Pages++
		in := make([]ticketsystem.Ticket, 0, len(page))
		past := false
		for i := range page {
			t := page[i]
			switch {
			case !t.UpdatedAt.IsZero() && !t.UpdatedAt.Before(to):
				past = true
				continue
			case !t.UpdatedAt.IsZero() && t.UpdatedAt.Before(from):
				continue // the feed truncates since to whole seconds
			case t.Spam || t.Deleted:
				rep.Seen++
				rep.Skipped++
				f.metrics.filtered.WithLabelValues(ReasonSpamDeleted).Inc()
				continue
			}
			in = append(in, t)
		}
		results, err := f.handlePage(ctx, in, o)
		for i, r := range results {
			if r.Status == "" {
				continue // failed; err says why
			}
			rep.Seen++
			switch r.Status {
			case StatusPublished:
				rep.Published++
			case StatusDuplicate:
				rep.Duplicates++
			case StatusSkipped:
				rep.Skipped++
			case StatusInvalid:
				rep.Invalid++
			}
			if in[i].UpdatedAt.After(rep.Through) {
				rep.Through = in[i].UpdatedAt
			}
		}
		if opts.Progress != nil {
			opts.Progress(rep.BackfillProgress)
		}
		if err != nil {
			return err
		}
		if past {
			return errBackfillDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errBackfillDone) {
		f.log.Warn("backfill stopped", "batch", opts.BatchID, "err", err, "published", rep.Published)
		return rep, fmt.Errorf("backfill %s: %w", opts.BatchID, err)
	}
	f.log.Info("backfill done", "batch", opts.BatchID, "published", rep.Published, "duplicates", rep.Duplicates,
		"skipped", rep.Skipped, "invalid", rep.Invalid)
	return rep, nil
}
