package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// This file holds the operator's tools (the `autotriage` CLI): reading a
// stream from a point with a subject filter, counting, deleting and purging
// messages. None of it touches the durable consumers of the stages.

// ReadOptions select a range of a stream. With neither StartSeq nor
// StartTime set, reading starts at the first message.
type ReadOptions struct {
	Stream string
	// Subject filters the messages ("" or ">" for all); wildcards allowed.
	Subject string
	// StartSeq starts at this stream sequence (takes precedence over StartTime).
	StartSeq uint64
	// StartTime starts at the first message stored at or after this instant.
	StartTime time.Time
	// StopSeq ends the range after this sequence. 0 means the stream's last
	// sequence when reading starts, so messages published while reading (a
	// replay re-publishing into the stream it reads) are never read back.
	StopSeq uint64
	// Idle bounds the wait for the next message (default 5s); a range whose
	// tail was removed by retention while being read ends there.
	Idle time.Duration
}

// ErrStopRead may be returned by a Read callback to end the read early
// without an error.
var ErrStopRead = errors.New("stop reading")

func (o ReadOptions) filter() []string {
	if o.Subject == "" || o.Subject == ">" {
		return nil
	}
	return []string{o.Subject}
}

func (o ReadOptions) deliver() (jetstream.DeliverPolicy, uint64, *time.Time) {
	switch {
	case o.StartSeq > 0:
		return jetstream.DeliverByStartSequencePolicy, o.StartSeq, nil
	case !o.StartTime.IsZero():
		t := o.StartTime
		return jetstream.DeliverByStartTimePolicy, 0, &t
	}
	return jetstream.DeliverAllPolicy, 0, nil
}

// Range describes what a ReadOptions selects at the moment it is asked.
type Range struct {
	// Count is the number of matching messages from the start point up to
	// the end of the stream.
	Count uint64
	// LastSeq is the stream's last sequence (the default StopSeq).
	LastSeq uint64
}

// CountRange counts the messages a Read with o would see (up to the end of
// the stream, so it can exceed what Read delivers when StopSeq is set). It
// uses a short-lived ephemeral consumer that delivers nothing.
func (c *Conn) CountRange(ctx context.Context, o ReadOptions) (Range, error) {
	s, err := c.js.Stream(ctx, o.Stream)
	if err != nil {
		return Range{}, fmt.Errorf("stream %s: %w", o.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Range{}, fmt.Errorf("stream %s info: %w", o.Stream, err)
	}
	pol, seq, at := o.deliver()
	cfg := jetstream.ConsumerConfig{
		Description:       "autotriage CLI count",
		DeliverPolicy:     pol,
		OptStartSeq:       seq,
		OptStartTime:      at,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubjects:    o.filter(),
		InactiveThreshold: 10 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	}
	cons, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return Range{}, fmt.Errorf("count %s: %w", o.Stream, err)
	}
	ci := cons.CachedInfo()
	// Best effort: the inactive threshold removes it anyway.
	_ = s.DeleteConsumer(context.WithoutCancel(ctx), ci.Name)
	return Range{Count: ci.NumPending, LastSeq: info.State.LastSeq}, nil
}

// Read calls fn for each message of the range, in stream order, through an
// ordered ephemeral consumer (no acks, nothing left behind on the server).
// It returns the number of messages passed to fn. fn returning ErrStopRead
// ends the read with no error; any other error ends it with that error.
func (c *Conn) Read(ctx context.Context, o ReadOptions, fn func(RawMsg) error) (int, error) {
	if o.Idle <= 0 {
		o.Idle = 5 * time.Second
	}
	rng, err := c.CountRange(ctx, o)
	if err != nil {
		return 0, err
	}
	stop := o.StopSeq
	if stop == 0 {
		stop = rng.LastSeq
	}
	if rng.Count == 0 || stop == 0 {
		return 0, nil
	}
	pol, seq, at := o.deliver()
	cons, err := c.js.OrderedConsumer(ctx, o.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    o.filter(),
		DeliverPolicy:     pol,
		OptStartSeq:       seq,
		OptStartTime:      at,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", o.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", o.Stream, err)
	}
	defer it.Stop()
	n := 0
	for {
		nctx, cancel := context.WithTimeout(ctx, o.Idle)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, fmt.Errorf("read %s: %w", o.Stream, ctx.Err())
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				return n, nil // nothing more arrived: the rest is gone
			}
			return n, fmt.Errorf("read %s: %w", o.Stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("read %s: %w", o.Stream, err)
		}
		if md.Sequence.Stream > stop {
			return n, nil
		}
		raw := RawMsg{Subject: msg.Subject(), Sequence: md.Sequence.Stream, Data: msg.Data(), Header: msg.Headers(), Time: md.Timestamp}
		n++
		if err := fn(raw); err != nil {
			if errors.Is(err, ErrStopRead) {
				return n, nil
			}
			return n, err
		}
		if md.Sequence.Stream >= stop || md.NumPending == 0 {
			return n, nil
		}
	}
}

// DeleteMsg removes one message from a stream (ErrNotFound if it is gone).
func (c *Conn) DeleteMsg(ctx context.Context, stream string, seq uint64) error {
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || isAPICode(err, jetstream.JSErrCodeMessageNotFound) || msgAlreadyGone(err) {
			return fmt.Errorf("delete %s seq %d: %w", stream, seq, ErrNotFound)
		}
		return fmt.Errorf("delete %s seq %d: %w", stream, seq, err)
	}
	return nil
}

// msgAlreadyGone recognises the server's answer to deleting a missing
// message: the client reports a generic "deletion unsuccessful" with the
// server's description as text only.
func msgAlreadyGone(err error) bool {
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found")
}

func isAPICode(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// PurgeSubject removes every message of a stream matching subject ("" or
// ">" for all) and returns how many there were just before.
func (c *Conn) PurgeSubject(ctx context.Context, stream, subject string) (uint64, error) {
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	counts, err := c.SubjectCounts(ctx, stream, subject)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range counts {
		n += v
	}
	var opts []jetstream.StreamPurgeOpt
	if subject != "" && subject != ">" {
		opts = append(opts, jetstream.WithPurgeSubject(subject))
	}
	if err := s.Purge(ctx, opts...); err != nil {
		return 0, fmt.Errorf("purge %s %s: %w", stream, subject, err)
	}
	return n, nil
}

// SubjectCounts returns the number of stored messages per subject matching
// filter ("" or ">" for all), e.g. the DLQ depth per dlq.<stage>.<account>.
func (c *Conn) SubjectCounts(ctx context.Context, stream, filter string) (map[string]uint64, error) {
	if filter == "" {
		filter = ">"
	}
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("stream %s subjects: %w", stream, err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for k, v := range info.State.Subjects {
		out[k] = v
	}
	return out, nil
}

// DLQDepth sums the DLQ's messages per stage (the second token of
// dlq.<stage>.<account>), stages sorted.
func (c *Conn) DLQDepth(ctx context.Context) ([]StageCount, error) {
	counts, err := c.SubjectCounts(ctx, StreamDLQ, "dlq.>")
	if err != nil {
		return nil, err
	}
	by := map[string]uint64{}
	for subj, n := range counts {
		parts := strings.SplitN(subj, ".", 3)
		stage := "_"
		if len(parts) >= 2 {
			stage = parts[1]
		}
		by[stage] += n
	}
	out := make([]StageCount, 0, len(by))
	for s, n := range by {
		out = append(out, StageCount{Stage: s, Messages: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stage < out[j].Stage })
	return out, nil
}

// StageCount is the DLQ depth of one stage.
type StageCount struct {
	Stage    string `json:"stage"`
	Messages uint64 `json:"messages"`
}

// HasTopology reports whether the pipeline's streams exist, without
// creating anything: an operator tool must not impose its own stream
// settings on a running system.
func (c *Conn) HasTopology(ctx context.Context) (bool, error) {
	_, err := c.js.Stream(ctx, StreamTickets)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", StreamTickets, err)
	}
	return true, nil
}
