package writer

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	decisions   *prometheus.CounterVec
	actions     *prometheus.CounterVec
	outcomes    *prometheus.CounterVec
	writes      *prometheus.CounterVec
	notes       *prometheus.CounterVec
	credits     prometheus.Counter
	rateLimited prometheus.Counter
	invalid     prometheus.Counter
	endToEnd    prometheus.Histogram
	// leaseWaits counts deliveries that met another writer's lease on the
	// ticket: waited for it, restarted from a fresh read, or asked for a
	// redelivery.
	leaseWaits        *prometheus.CounterVec
	outcomeDuplicates *prometheus.CounterVec
	catalogChanges    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_writer_decisions_total",
			Help: "Field decisions received from the classifier, by field and mode (shadow, suggest, apply, abstain).",
		}, []string{"field", "mode"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_writer_actions_total",
			Help: "What the writer did per field: applied, suggested, shadowed, skipped, failed or abstained.",
		}, []string{"field", "action"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_writer_outcomes_total",
			Help: "Outcomes published, by result (ok, failed, skipped).",
		}, []string{"result"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_writer_ticket_updates_total",
			Help: "Ticket updates (PUT) by result (ok, rejected, gone, error).",
		}, []string{"result"}),
		notes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_writer_notes_total",
			Help: "Decision notes by result (written, already_written, unknown, failed).",
		}, []string{"result"}),
		credits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_writer_api_credits_total",
			Help: "Ticket-system API credits spent by the writer.",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_writer_rate_limited_total",
			Help: "Ticket-system answers with status 429 seen by the writer.",
		}),
		invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_writer_invalid_predictions_total",
			Help: "Prediction messages that could not be decoded or were invalid (sent to the DLQ).",
		}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autotriage_writer_end_to_end_seconds",
			Help:    "Time from a ticket's creation to autotriage's update of it.",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600},
		}),
		leaseWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_writer_lease_waits_total",
			Help: "Deliveries that met another writer's lease on their ticket, by what they did: wait (in process), restart (from a fresh read, the record had changed), redeliver (asked for a later delivery).",
		}, []string{"action"}),
		outcomeDuplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_writer_outcome_duplicates_total",
			Help: "Outcome publishes the stream answered as duplicates; expected=true on a redelivery (an earlier delivery stored it), false on a first delivery (an outcome was lost).",
		}, []string{"expected"}),
	}
	m.catalogChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "autotriage_writer_catalog_changes_total",
		Help: "Helpdesk catalog changes the writer published (CATALOG_CHANGE outcomes), by field and change (added, removed).",
	}, []string{"field", "change"})
	for _, a := range []string{"wait", "restart", "redeliver"} {
		m.leaseWaits.WithLabelValues(a)
	}
	for _, e := range []string{"true", "false"} {
		m.outcomeDuplicates.WithLabelValues(e)
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.actions, m.outcomes, m.writes, m.notes, m.credits, m.rateLimited, m.invalid, m.endToEnd,
			m.leaseWaits, m.outcomeDuplicates, m.catalogChanges)
	}
	return m
}
