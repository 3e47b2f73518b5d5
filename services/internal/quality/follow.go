package quality

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/pipeline"
)

// Stream is how Follow reads OUTCOMES (*pipeline.Conn implements it).
type Stream interface {
	Follow(ctx context.Context, o pipeline.ReadOptions, fn func(pipeline.RawMsg) error) error
}

// Reader reads a bounded range of OUTCOMES (*pipeline.Conn implements it).
type Reader interface {
	Read(ctx context.Context, o pipeline.ReadOptions, fn func(pipeline.RawMsg) error) (int, error)
}

// FollowOptions configure Follow.
type FollowOptions struct {
	// From is where reading starts (default: now minus the tracker's
	// MaxAge, or the stream's start without an age bound).
	From time.Time
	// Retry is the pause before following again after the stream failed
	// (default 2s).
	Retry time.Duration
	Log   *slog.Logger
	// Observed, when set, is called after each message was counted (or
	// skipped), with its stream sequence (tests, progress).
	Observed func(seq uint64)
}

// Follow tails OUTCOMES into t until ctx ends, through an ordered
// ephemeral consumer (pipeline.Conn.Follow): nothing is left on the server
// and nothing is acknowledged. It starts at o.From and, after a failure of
// the stream, resumes after the last message it counted. Messages that do
// not decode are logged and skipped. It returns nil when ctx ends.
func Follow(ctx context.Context, s Stream, t *Tracker, o FollowOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Retry <= 0 {
		o.Retry = 2 * time.Second
	}
	ro := pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, StartTime: o.From}
	if ro.StartTime.IsZero() && t.o.MaxAge > 0 {
		ro.StartTime = t.o.Now().Add(-t.o.MaxAge)
	}
	var last uint64
	for {
		if last > 0 {
			ro = pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, StartSeq: last + 1}
		}
		err := s.Follow(ctx, ro, func(m pipeline.RawMsg) error {
			last = m.Sequence
			t.ObserveRaw(m, o.Log)
			if o.Observed != nil {
				o.Observed(m.Sequence)
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		o.Log.Warn("following OUTCOMES for live precision failed; following again", "after_seq", last, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Retry):
		}
	}
}

// Load reads the OUTCOMES stored from from up to now into t (the CLI's
// reports) and returns the number of messages read.
func Load(ctx context.Context, r Reader, t *Tracker, from time.Time, log *slog.Logger) (int, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := r.Read(ctx, pipeline.ReadOptions{Stream: pipeline.StreamOutcomes, StartTime: from}, func(m pipeline.RawMsg) error {
		t.ObserveRaw(m, log)
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("read OUTCOMES for live precision: %w", err)
	}
	return n, nil
}

// ObserveRaw decodes an OUTCOMES message and observes it. A message that
// does not decode is logged and counted (Undecodable), never fatal.
func (t *Tracker) ObserveRaw(m pipeline.RawMsg, log *slog.Logger) {
	var out v1.Outcome
	if err := proto.Unmarshal(m.Data, &out); err != nil {
		t.mu.Lock()
		t.undecodable++
		t.mu.Unlock()
		if log != nil {
			log.Warn("undecodable OUTCOMES message skipped by live precision", "seq", m.Sequence, "subject", m.Subject, "err", err)
		}
		return
	}
	t.Observe(&out)
}

// Undecodable is how many OUTCOMES messages did not decode.
func (t *Tracker) Undecodable() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.undecodable
}
