package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stats reports the state of streams and consumers: depths, lag and
// redeliveries, for status output and the metrics.
type Stats struct{ *link }

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
func (st *Stats) StreamStats(ctx context.Context) ([]StreamStat, error) {
	var out []StreamStat
	for _, name := range []string{StreamTickets, StreamPredictions, StreamOutcomes, StreamDLQ} {
		s, err := st.js.Stream(ctx, name)
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
func (st *Stats) ConsumerStats(ctx context.Context, stream, durable string) (ConsumerStat, error) {
	cons, err := st.js.Consumer(ctx, stream, durable)
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
func (st *Stats) WatchLag(ctx context.Context, stream, durable string, every time.Duration, m *Metrics) {
	st.watch(ctx, every, m, func(qctx context.Context) {
		if st, err := st.ConsumerStats(qctx, stream, durable); err == nil {
			m.pending.WithLabelValues(stream, durable).Set(float64(st.Pending))
			m.ackPending.WithLabelValues(stream, durable).Set(float64(st.AckPending))
			m.redeliv.WithLabelValues(stream, durable).Set(float64(st.Redelivered))
		}
		st.refreshStreams(qctx, m)
	})
}

// WatchStreams refreshes the stream gauges (DLQ depth included) every
// interval until ctx ends, for a stage without a durable consumer of its
// own (the fetcher).
func (st *Stats) WatchStreams(ctx context.Context, every time.Duration, m *Metrics) {
	st.watch(ctx, every, m, func(qctx context.Context) { st.refreshStreams(qctx, m) })
}

// watch runs refresh at once and then every interval until ctx ends, each
// run bounded by the interval.
func (st *Stats) watch(ctx context.Context, every time.Duration, m *Metrics, refresh func(context.Context)) {
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

func (st *Stats) refreshStreams(ctx context.Context, m *Metrics) {
	if ss, err := st.StreamStats(ctx); err == nil {
		for _, s := range ss {
			m.streamMsgs.WithLabelValues(s.Name).Set(float64(s.Messages))
			m.streamByte.WithLabelValues(s.Name).Set(float64(s.Bytes))
		}
	}
}

// SubjectCounts returns the number of stored messages per subject matching
// filter ("" or ">" for all), e.g. the DLQ depth per dlq.<stage>.<account>.
func (st *Stats) SubjectCounts(ctx context.Context, stream, filter string) (map[string]uint64, error) {
	if filter == "" {
		filter = ">"
	}
	s, err := st.js.Stream(ctx, stream)
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
func (st *Stats) DLQDepth(ctx context.Context) ([]StageCount, error) {
	counts, err := st.SubjectCounts(ctx, StreamDLQ, "dlq.>")
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
