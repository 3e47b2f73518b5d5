package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamStat summarises a stream for status output and metrics.
type StreamStat struct {
	Name     string
	Messages uint64
	Bytes    uint64
	FirstSeq uint64
	LastSeq  uint64
	Oldest   time.Time
	Replicas int
}

// ConsumerStat summarises a durable consumer: its lag and redeliveries.
type ConsumerStat struct {
	Stream      string
	Name        string
	Pending     uint64 // not yet delivered
	AckPending  int    // delivered, not acknowledged
	Redelivered int    // being redelivered
	Delivered   uint64 // last delivered stream sequence
	AckFloor    uint64 // every message up to here is acknowledged
}

// StreamStats returns the stats of every pipeline stream.
func (c *Conn) StreamStats(ctx context.Context) ([]StreamStat, error) {
	var out []StreamStat
	for _, name := range []string{StreamTickets, StreamPredictions, StreamOutcomes, StreamDLQ} {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("stream %s info: %w", name, err)
		}
		out = append(out, StreamStat{
			Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Oldest: info.State.FirstTime,
			Replicas: info.Config.Replicas,
		})
	}
	return out, nil
}

// ConsumerStats returns the stats of a durable consumer.
func (c *Conn) ConsumerStats(ctx context.Context, stream, durable string) (ConsumerStat, error) {
	cons, err := c.js.Consumer(ctx, stream, durable)
	if err != nil {
		return ConsumerStat{}, fmt.Errorf("consumer %s/%s: %w", stream, durable, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return ConsumerStat{}, fmt.Errorf("consumer %s/%s info: %w", stream, durable, err)
	}
	return ConsumerStat{
		Stream: stream, Name: durable, Pending: info.NumPending, AckPending: info.NumAckPending,
		Redelivered: info.NumRedelivered, Delivered: info.Delivered.Stream, AckFloor: info.AckFloor.Stream,
	}, nil
}

// WatchLag refreshes the lag gauges of the durable consumer (and the stream
// gauges, DLQ depth included) every interval until ctx ends.
func (c *Conn) WatchLag(ctx context.Context, stream, durable string, every time.Duration, m *Metrics) {
	c.watch(ctx, every, m, func(qctx context.Context) {
		if st, err := c.ConsumerStats(qctx, stream, durable); err == nil {
			m.pending.WithLabelValues(stream, durable).Set(float64(st.Pending))
			m.ackPending.WithLabelValues(stream, durable).Set(float64(st.AckPending))
			m.redeliv.WithLabelValues(stream, durable).Set(float64(st.Redelivered))
		}
		c.refreshStreams(qctx, m)
	})
}

// WatchStreams refreshes the stream gauges (DLQ depth included) every
// interval until ctx ends, for a stage without a durable consumer of its
// own (the fetcher).
func (c *Conn) WatchStreams(ctx context.Context, every time.Duration, m *Metrics) {
	c.watch(ctx, every, m, func(qctx context.Context) { c.refreshStreams(qctx, m) })
}

// watch runs refresh at once and then every interval until ctx ends, each
// run bounded by the interval.
func (c *Conn) watch(ctx context.Context, every time.Duration, m *Metrics, refresh func(context.Context)) {
	if m == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, every)
		refresh(qctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Conn) refreshStreams(ctx context.Context, m *Metrics) {
	if ss, err := c.StreamStats(ctx); err == nil {
		for _, s := range ss {
			m.streamMsgs.WithLabelValues(s.Name).Set(float64(s.Messages))
			m.streamByte.WithLabelValues(s.Name).Set(float64(s.Bytes))
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
func (c *Conn) GetMsg(ctx context.Context, stream string, seq uint64) (RawMsg, error) {
	return c.getRaw(ctx, stream, seq)
}

func (c *Conn) getRaw(ctx context.Context, stream string, seq uint64) (RawMsg, error) {
	s, err := c.js.Stream(ctx, stream)
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
