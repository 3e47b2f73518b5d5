package fetcher

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the fetcher's Prometheus series. They are always created, and
// registered only when a Registerer is given.
type metrics struct {
	fetched        *prometheus.CounterVec // by source: poll, webhook, backfill
	published      *prometheus.CounterVec // by arrival
	duplicates     *prometheus.CounterVec // by arrival
	filtered       *prometheus.CounterVec // by reason
	invalid        *prometheus.CounterVec // by source
	unreadable     *prometheus.CounterVec // by source
	webhooks       *prometheus.CounterVec // by HTTP code
	webhookRefused *prometheus.CounterVec // by reason
	webhookSources prometheus.Gauge
	overrides      *prometheus.CounterVec // by field
	feedback       *prometheus.CounterVec // by field, verdict
	feedbackErrors prometheus.Counter
	seenStored     prometheus.Counter
	seenErrors     prometheus.Counter
	pollDuration   prometheus.Histogram
	pollErrors     prometheus.Counter
	cursorLag      prometheus.Gauge
	leaseHeld      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		fetched: counterVec("autotriage_fetcher_tickets_fetched_total",
			"Ticket versions read from the ticket system, by source (poll, webhook, backfill).", "source"),
		published: counterVec("autotriage_fetcher_tickets_published_total",
			"Ticket versions newly stored in TICKETS, by arrival.", "arrival"),
		duplicates: counterVec("autotriage_fetcher_duplicates_total",
			"Ticket versions the stream already had (same message id), by arrival.", "arrival"),
		filtered: counterVec("autotriage_fetcher_tickets_filtered_total",
			"Ticket versions not published, by reason (status, spam_deleted, already_triaged, own_version, own_write, stale, override, created_before, before_start, out_of_range).", "reason"),
		invalid: counterVec("autotriage_fetcher_invalid_total",
			"Malformed tickets or webhook bodies sent to the DLQ, by source.", "source"),
		unreadable: counterVec("autotriage_fetcher_unreadable_total",
			"Ticket versions too large to read within the ticket-system client's response limit, by source: poll and backfill send them to the DLQ instead of triage; a webhook leaves them to the poll.", "source"),
		webhooks: counterVec("autotriage_fetcher_webhook_requests_total",
			"Webhook requests by HTTP response code.", "code"),
		webhookRefused: counterVec("autotriage_fetcher_webhook_refused_total",
			"Webhook requests refused before their body was read, by reason (source_not_allowed 403, rate_limited 429, missing_credentials and bad_credentials 401).", "reason"),
		webhookSources: gauge("autotriage_fetcher_webhook_sources",
			"Webhook sources with their own rate-limit bucket (at most AUTOTRIAGE_WEBHOOK_MAX_SOURCES; idle ones are dropped)."),
		overrides: counterVec("autotriage_overrides_total",
			"Fields autotriage set that a person changed afterwards, by field.", "field"),
		feedback: counterVec("autotriage_feedback_total",
			"Verdicts on values autotriage applied or suggested, by field and verdict (confirmed, overridden, accepted, rejected): the evidence of live precision.", "field", "verdict"),
		feedbackErrors: counter("autotriage_feedback_bookkeeping_errors_total",
			"Feedback already published whose reporting could not be recorded in the fetcher's bucket; it is published again later under the same message id (dropped by the stream within its duplicate window)."),
		seenStored: counter("autotriage_fetcher_seen_versions_recorded_total",
			"Ticket versions recorded as the newest observed version of their ticket (the writer's no-clobber reference)."),
		seenErrors: counter("autotriage_fetcher_seen_errors_total",
			"Observed ticket versions that could not be recorded; the version is read again (poll page retried, webhook answered 503)."),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autotriage_fetcher_poll_duration_seconds",
			Help:    "Time one poll of the change feed took, publishes included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}),
		pollErrors: counter("autotriage_fetcher_poll_errors_total",
			"Polls that stopped on an error (the cursor stays where the last acknowledged page left it)."),
		cursorLag: gauge("autotriage_fetcher_cursor_lag_seconds",
			"Now minus the polling cursor, on the replica holding the lease."),
		leaseHeld: gauge("autotriage_fetcher_lease_held",
			"1 while this replica holds the polling lease of its account."),
	}
	m.initLabels()
	if reg != nil {
		reg.MustRegister(m.collectors()...)
	}
	return m
}

// initLabels creates the series a dashboard reads before their first event,
// so its panels read 0, not "no data": the fields a person can override, each
// verdict on them, and each reason a webhook is refused.
func (m *metrics) initLabels() {
	for _, field := range []string{FieldGroup, FieldType, FieldPriority} {
		m.overrides.WithLabelValues(field)
		for _, v := range verdictLabels {
			m.feedback.WithLabelValues(field, v)
		}
	}
	for _, reason := range refusedReasons {
		m.webhookRefused.WithLabelValues(reason)
	}
}

// collectors lists every series, in the order of the struct.
func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.fetched, m.published, m.duplicates, m.filtered, m.invalid, m.unreadable,
		m.webhooks, m.webhookRefused, m.webhookSources, m.overrides, m.feedback, m.feedbackErrors,
		m.seenStored, m.seenErrors, m.pollDuration, m.pollErrors, m.cursorLag, m.leaseHeld}
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}
