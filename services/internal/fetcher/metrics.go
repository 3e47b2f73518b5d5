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
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_tickets_fetched_total",
			Help: "Ticket versions read from the ticket system, by source (poll, webhook, backfill).",
		}, []string{"source"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_tickets_published_total",
			Help: "Ticket versions newly stored in TICKETS, by arrival.",
		}, []string{"arrival"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_duplicates_total",
			Help: "Ticket versions the stream already had (same message id), by arrival.",
		}, []string{"arrival"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_tickets_filtered_total",
			Help: "Ticket versions not published, by reason (status, spam_deleted, already_triaged, own_version, own_write, stale, override, created_before, before_start, out_of_range).",
		}, []string{"reason"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_invalid_total",
			Help: "Malformed tickets or webhook bodies sent to the DLQ, by source.",
		}, []string{"source"}),
		unreadable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_unreadable_total",
			Help: "Ticket versions too large to read within the ticket-system client's response limit, by source: poll and backfill send them to the DLQ instead of triage; a webhook leaves them to the poll.",
		}, []string{"source"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_webhook_requests_total",
			Help: "Webhook requests by HTTP response code.",
		}, []string{"code"}),
		webhookRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_fetcher_webhook_refused_total",
			Help: "Webhook requests refused before their body was read, by reason (source_not_allowed 403, rate_limited 429, missing_credentials and bad_credentials 401).",
		}, []string{"reason"}),
		webhookSources: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autotriage_fetcher_webhook_sources",
			Help: "Webhook sources with their own rate-limit bucket (at most AUTOTRIAGE_WEBHOOK_MAX_SOURCES; idle ones are dropped).",
		}),
		overrides: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_overrides_total",
			Help: "Fields autotriage set that a person changed afterwards, by field.",
		}, []string{"field"}),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autotriage_feedback_total",
			Help: "Verdicts on values autotriage applied or suggested, by field and verdict (confirmed, overridden, accepted, rejected): the evidence of live precision.",
		}, []string{"field", "verdict"}),
		feedbackErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_feedback_bookkeeping_errors_total",
			Help: "Feedback already published whose reporting could not be recorded in the fetcher's bucket; it is published again later under the same message id (dropped by the stream within its duplicate window).",
		}),
		seenStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_fetcher_seen_versions_recorded_total",
			Help: "Ticket versions recorded as the newest observed version of their ticket (the writer's no-clobber reference).",
		}),
		seenErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_fetcher_seen_errors_total",
			Help: "Observed ticket versions that could not be recorded; the version is read again (poll page retried, webhook answered 503).",
		}),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autotriage_fetcher_poll_duration_seconds",
			Help:    "Time one poll of the change feed took, publishes included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autotriage_fetcher_poll_errors_total",
			Help: "Polls that stopped on an error (the cursor stays where the last acknowledged page left it).",
		}),
		cursorLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autotriage_fetcher_cursor_lag_seconds",
			Help: "Now minus the polling cursor, on the replica holding the lease.",
		}),
		leaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autotriage_fetcher_lease_held",
			Help: "1 while this replica holds the polling lease of its account.",
		}),
	}
	// The fields a person can override exist at zero from the start, so the
	// dashboard's overrides panel reads 0, not "no data", until the first.
	for _, field := range []string{FieldGroup, FieldType, FieldPriority} {
		m.overrides.WithLabelValues(field)
		for _, v := range verdictLabels {
			m.feedback.WithLabelValues(field, v)
		}
	}
	for _, reason := range refusedReasons {
		m.webhookRefused.WithLabelValues(reason)
	}
	if reg != nil {
		reg.MustRegister(m.fetched, m.published, m.duplicates, m.filtered, m.invalid, m.unreadable, m.webhooks,
			m.webhookRefused, m.webhookSources, m.overrides, m.feedback, m.feedbackErrors, m.seenStored, m.seenErrors, m.pollDuration, m.pollErrors, m.cursorLag, m.leaseHeld)
	}
	return m
}
