package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reader reads streams without touching the stages' durable consumers:
// a range or a following read through ephemeral consumers, one message by
// sequence, or plain subscriptions (the operator's CLI, quality reports,
// benchmarks).
type Reader struct{ *link }

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
func (r *Reader) CountRange(ctx context.Context, o ReadOptions) (Range, error) {
	s, err := r.js.Stream(ctx, o.Stream)
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
func (r *Reader) Read(ctx context.Context, o ReadOptions, fn func(RawMsg) error) (int, error) {
	if o.Idle <= 0 {
		o.Idle = 5 * time.Second
	}
	rng, err := r.CountRange(ctx, o)
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
	cons, err := r.js.OrderedConsumer(ctx, o.Stream, jetstream.OrderedConsumerConfig{
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

// RawMsg is a message read directly from a stream by sequence.
type RawMsg struct {
	Subject  string
	Sequence uint64
	Data     []byte
	Header   map[string][]string
	Time     time.Time
}

// GetMsg reads one stored message by stream sequence (ErrNotFound if gone).
func (r *Reader) GetMsg(ctx context.Context, stream string, seq uint64) (RawMsg, error) {
	return r.getRaw(ctx, stream, seq)
}

func (l *link) getRaw(ctx context.Context, stream string, seq uint64) (RawMsg, error) {
	s, err := l.js.Stream(ctx, stream)
	if err != nil {
		return RawMsg{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return RawMsg{}, fmt.Errorf("stream %s seq %d: %w", stream, seq, ErrNotFound)
	}
	if err != nil {
		return RawMsg{}, fmt.Errorf("stream %s seq %d: %w", stream, seq, err)
	}
	return RawMsg{Subject: raw.Subject, Sequence: raw.Sequence, Data: raw.Data, Header: raw.Header, Time: raw.Time}, nil
}

// Follow calls fn for each message of a stream from o's start point, in
// stream order, and keeps waiting for new ones until ctx ends (returning
// nil then) or fn fails (returning its error; ErrStopRead ends it with
// nil). It reads through an ordered ephemeral consumer: no acks, nothing
// left on the server once the reader is gone, and the client re-creates it
// from the last sequence seen after a disconnect, so no message is passed
// twice or skipped (unless retention removed it meanwhile). o.StopSeq and
// o.Idle are ignored.
func (r *Reader) Follow(ctx context.Context, o ReadOptions, fn func(RawMsg) error) error {
	pol, seq, at := o.deliver()
	cons, err := r.js.OrderedConsumer(ctx, o.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    o.filter(),
		DeliverPolicy:     pol,
		OptStartSeq:       seq,
		OptStartTime:      at,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("follow %s: %w", o.Stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("follow %s: %w", o.Stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("follow %s: %w", o.Stream, err)
		}
		raw := RawMsg{Subject: msg.Subject(), Sequence: md.Sequence.Stream, Data: msg.Data(), Header: msg.Headers(), Time: md.Timestamp}
		if err := fn(raw); err != nil {
			if errors.Is(err, ErrStopRead) {
				return nil
			}
			return err
		}
	}
}

// Subscribe calls fn for every message published on subject (wildcards
// allowed) from now on, through a plain NATS subscription: no JetStream
// consumer, so nothing is stored, acknowledged or replayed, and messages
// published while the connection is down are not seen. It suits observers
// that time messages as they are published (benchmarks); readers that must
// see every message use Read or Follow. fn runs on one goroutine, in order.
// The returned stop ends the subscription.
func (r *Reader) Subscribe(subject string, fn func(RawMsg)) (stop func() error, err error) {
	sub, err := r.nc.Subscribe(subject, func(m *nats.Msg) {
		fn(RawMsg{Subject: m.Subject, Data: m.Data, Header: m.Header})
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	if err := r.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return sub.Unsubscribe, nil
}
