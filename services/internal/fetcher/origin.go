package fetcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// StartKey is the KV key of an account's triage start (Origin).
func StartKey(system, account string) string {
	return "start." + pipeline.Token(system) + "." + pipeline.Token(account)
}

// Origin is where triage of an account begins, fixed at the fetcher's first
// start and kept in KV beside the cursor so that every later start, every
// replica and the webhook path agree on it: the first poll reads updates
// from At, and a ticket created before At is never triaged however often it
// is updated afterwards (ReasonBeforeStart). Pointing autotriage at a live
// helpdesk therefore touches only tickets created from then on, unless
// AUTOTRIAGE_FETCHER_START reached back on purpose.
type Origin struct {
	// At is the start; zero means no limit (an account polled before this
	// record existed keeps triaging as it did).
	At time.Time `json:"at"`
	// Setting is the AUTOTRIAGE_FETCHER_START that produced At.
	Setting    string    `json:"setting"`
	RecordedAt time.Time `json:"recorded_at"`
	Holder     string    `json:"holder"`
}

// Origin returns the account's triage start, recording it on the first call
// ever for the account (from AUTOTRIAGE_FETCHER_START). Replicas racing on
// the first start agree: the first record written wins.
func (f *Fetcher) Origin(ctx context.Context) (Origin, error) {
	if o := f.origin.Load(); o != nil {
		return *o, nil
	}
	f.originMu.Lock()
	defer f.originMu.Unlock()
	if o := f.origin.Load(); o != nil {
		return *o, nil
	}
	o, err := f.resolveOrigin(ctx)
	if err != nil {
		return Origin{}, fmt.Errorf("triage start %s: %w", StartKey(f.system, f.account), err)
	}
	f.origin.Store(&o)
	return o, nil
}

func (f *Fetcher) resolveOrigin(ctx context.Context) (Origin, error) {
	key := StartKey(f.system, f.account)
	read := func() (Origin, error) {
		e, err := f.state.Get(ctx, key)
		if err != nil {
			return Origin{}, err
		}
		var o Origin
		if err := json.Unmarshal(e.Value, &o); err != nil {
			return Origin{}, fmt.Errorf("unreadable: %w", err)
		}
		return o, nil
	}
	o, err := read()
	if err == nil {
		return o, nil
	}
	if !errors.Is(err, pipeline.ErrNotFound) {
		return Origin{}, err
	}
	now := f.now()
	o = Origin{Setting: f.cfg.Start, RecordedAt: now.UTC(), Holder: f.holder}
	switch _, _, cerr := f.readCursor(ctx); {
	case cerr == nil:
		// Polled before origins were recorded: what was triaged then
		// stays the rule, rather than a cut-off appearing on upgrade.
		o.Setting = "cursor already stored"
	case errors.Is(cerr, pipeline.ErrNotFound):
		at, perr := parseStart(f.cfg.Start, now)
		if perr != nil {
			return Origin{}, fmt.Errorf("AUTOTRIAGE_FETCHER_START: %w", perr)
		}
		// Ticket times have whole seconds: a ticket created in the
		// second of the start counts as after it.
		o.At = at.UTC().Truncate(time.Second)
	default:
		return Origin{}, cerr
	}
	b, err := json.Marshal(o)
	if err != nil {
		return Origin{}, fmt.Errorf("encode: %w", err)
	}
	if _, err := f.state.Create(ctx, key, b); errors.Is(err, pipeline.ErrExists) {
		return read()
	} else if err != nil {
		return Origin{}, fmt.Errorf("store: %w", err)
	}
	if o.At.IsZero() {
		f.log.Info("triage start recorded: no limit (the account was polled before)", "key", key)
	} else {
		f.log.Info("triage start recorded: tickets created before it are not triaged", "key", key, "at", o.At, "setting", o.Setting)
	}
	return o, nil
}

// beforeStart reports whether t was created before the account's triage
// start; an error means the start could not be read (the version counts as
// not handled and is read again).
func (f *Fetcher) beforeStart(ctx context.Context, createdAt time.Time) (bool, error) {
	o, err := f.Origin(ctx)
	if err != nil {
		return false, err
	}
	return !o.At.IsZero() && createdAt.Before(o.At), nil
}
