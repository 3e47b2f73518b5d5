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
			Help: "Messages copied to the DLQ by this process, by stage and cause (handler, max_deliveries; the fetcher's invalid_ticket, invalid_webhook).",
		}, []string{"stage", "cause"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autotriage_handlers_in_flight",
			Help: "Messages a stage is handling right now (during a shutdown: the drain still to finish).",
		}, []string{"stage"}),
	}
	reg.MustRegister(m.handled, m.duration, m.pending, m.ackPending, m.redeliv, m.streamMsgs, m.streamByte, m.deadLetter, m.inFlight)
	return m
}

// Dead-letter causes, the cause label of autotriage_dead_letters_total.
const (
	CauseHandler        = "handler"         // a consumer's handler failed for good
	CauseMaxDeliveries  = "max_deliveries"  // the server's max-deliveries advisory
	CauseInvalidTicket  = "invalid_ticket"  // the fetcher read a malformed ticket
	CauseInvalidWebhook = "invalid_webhook" // the fetcher refused a webhook body (400)
)

// results are the result label values of autotriage_messages_handled_total.
var results = []string{"ack", "retry", "dead_letter"}

// consuming creates a consuming stage's series at zero, so the dashboard's
// per-stage queries (stage="classifier", result!="ack") find a series from
// the start rather than after the first message of each kind.
func (m *Metrics) consuming(stage string) {
	if m == nil {
		return
	}
	for _, r := range results {
		m.handled.WithLabelValues(stage, r)
	}
	m.duration.WithLabelValues(stage)
	m.deadLetter.WithLabelValues(stage, CauseHandler)
}

// DeadLetters creates the stage's dead-letter series for causes at zero.
// A stage that dead-letters outside Consume (the fetcher) calls it at start.
func (m *Metrics) DeadLetters(stage string, causes ...string) {
	if m == nil {
		return
	}
	for _, c := range causes {
		m.deadLetter.WithLabelValues(stage, c)
	}
}

// DeadLettered counts one message the stage copied to the DLQ outside
// Consume (bad input that never was a stream message).
func (m *Metrics) DeadLettered(stage, cause string) {
	if m == nil {
		return
	}
	m.deadLetter.WithLabelValues(stage, cause).Inc()
}

func (m *Metrics) result(stage, result string) {
	if m == nil {
		return
	}
	m.handled.WithLabelValues(stage, result).Inc()
	if result == "dead_letter" {
		m.deadLetter.WithLabelValues(stage, CauseHandler).Inc()
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
	m.deadLetter.WithLabelValues(stage, CauseMaxDeliveries).Inc()
}
