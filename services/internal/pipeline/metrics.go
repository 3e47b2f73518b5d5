package pipeline

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus series. A nil *Metrics is valid and
// records nothing.
type Metrics struct {
	handled    *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	pending    *prometheus.GaugeVec
	ackPending *prometheus.GaugeVec
	redeliv    *prometheus.GaugeVec
	streamMsgs *prometheus.GaugeVec
	streamByte *prometheus.GaugeVec
	deadLetter *prometheus.CounterVec
	inFlight   *prometheus.GaugeVec
}

// NewMetrics registers the pipeline series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_messages_handled_total",
			Help: "Messages handled by a stage, by result (ack, retry, dead_letter).",
		}, []string{"stage", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autotriage_handler_duration_seconds",
			Help:    "Time a stage spent on one message.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"stage"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_consumer_pending_messages",
			Help: "Messages in the stream not yet delivered to the durable consumer (lag).",
		}, []string{"stream", "consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_consumer_ack_pending_messages",
			Help: "Messages delivered to the durable consumer and not yet acknowledged.",
		}, []string{"stream", "consumer"}),
		redeliv: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_consumer_redelivered_messages",
			Help: "Messages currently being redelivered to the durable consumer.",
		}, []string{"stream", "consumer"}),
		streamMsgs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_stream_messages",
			Help: "Messages stored in a stream (for DLQ: the dead-letter depth).",
		}, []string{"stream"}),
		streamByte: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_stream_bytes",
			Help: "Bytes stored in a stream.",
		}, []string{"stream"}),
		deadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_dead_letters_total",
			Help: "Messages copied to the DLQ by this process, by stage and cause.",
		}, []string{"stage", "cause"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_handlers_in_flight",
			Help: "Messages a stage is handling right now (during a shutdown: the drain still to finish).",
		}, []string{"stage"}),
	}
	reg.MustRegister(m.handled, m.duration, m.pending, m.ackPending, m.redeliv, m.streamMsgs, m.streamByte, m.deadLetter, m.inFlight)
	return m
}

func (m *Metrics) result(stage, result string) {
	if m == nil {
		return
	}
	m.handled.WithLabelValues(stage, result).Inc()
	if result == "dead_letter" {
		m.deadLetter.WithLabelValues(stage, "handler").Inc()
	}
}

func (m *Metrics) running(stage string, delta float64) {
	if m == nil {
		return
	}
	m.inFlight.WithLabelValues(stage).Add(delta)
}

func (m *Metrics) observe(stage string, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(stage).Observe(d.Seconds())
}

func (m *Metrics) advisory(stage string) {
	if m == nil {
		return
	}
	m.deadLetter.WithLabelValues(stage, "max_deliveries").Inc()
}
