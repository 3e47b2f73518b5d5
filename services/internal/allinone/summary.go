package allinone

import (
	"context"
	"fmt"

	dto "github.com/prometheus/client_model/go"

	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/service"
)

// summary renders the live line of `autotriage up`: what each stage did and
// what is still waiting.
type summary struct {
	rt *service.Runtime
	// lags has the connection that reads each durable's lag: the stage's
	// own (its role may read its consumer; another stage's may not). A
	// durable whose stage runs elsewhere shows "-".
	lags map[string]*pipeline.Conn
}

func newSummary(rt *service.Runtime, lags map[string]*pipeline.Conn) *summary {
	return &summary{rt: rt, lags: lags}
}

func (s *summary) line(ctx context.Context) string {
	streams := map[string]uint64{}
	if ss, err := s.rt.Conn.StreamStats(ctx); err == nil {
		for _, st := range ss {
			streams[st.Name] = st.Messages
		}
	}
	lag := func(stream, durable string) string {
		c := s.lags[durable]
		if c == nil {
			return "-"
		}
		st, err := c.ConsumerStats(ctx, stream, durable)
		if err != nil {
			return "?"
		}
		return fmt.Sprint(st.Pending + uint64(st.AckPending))
	}
	actions := s.counts("autotriage_writer_actions_total", "action")
	return fmt.Sprintf("fetched %d | classified %d | outcomes %d (applied %d, suggested %d, shadow %d, skipped %d, failed %d) | lag classifier %s, writer %s | dlq %d",
		streams[pipeline.StreamTickets], streams[pipeline.StreamPredictions], streams[pipeline.StreamOutcomes],
		actions["applied"], actions["suggested"], actions["shadowed"], actions["skipped"], actions["failed"],
		lag(pipeline.StreamTickets, pipeline.ConsumerClassifier), lag(pipeline.StreamPredictions, pipeline.ConsumerWriter),
		streams[pipeline.StreamDLQ])
}

// counts sums a counter family by one label's values.
func (s *summary) counts(family, label string) map[string]int {
	out := map[string]int{}
	mfs, err := s.rt.Registry.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelValue(m, label)] += int(m.GetCounter().GetValue())
		}
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
