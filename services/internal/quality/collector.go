package quality

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPrecision = prometheus.NewDesc("autotriage_live_precision",
		"Live precision of a class of a field: correct verdicts (confirmed, accepted) over all (also overridden, rejected) in the rolling window.",
		[]string{"field", "class"}, nil)
	descLower = prometheus.NewDesc("autotriage_live_precision_lower",
		"Wilson lower bound (95% by default) of autotriage_live_precision.",
		[]string{"field", "class"}, nil)
	descVerdicts = prometheus.NewDesc("autotriage_live_verdicts",
		"Verdicts in the rolling window of a class of a field (the n of autotriage_live_precision).",
		[]string{"field", "class"}, nil)
	descIgnored = prometheus.NewDesc("autotriage_live_precision_skipped_total",
		"OUTCOMES messages live precision could not count: undecodable, or feedback without a field or a known verdict.",
		[]string{"reason"}, nil)
)

// Collector exports t's snapshot at every scrape: one series per class
// with verdicts in the window (a class whose verdicts all aged out
// disappears).
func (t *Tracker) Collector() prometheus.Collector { return collector{t} }

// Register registers t's collector with reg (nil: nothing).
func (t *Tracker) Register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	return reg.Register(t.Collector())
}

type collector struct{ t *Tracker }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPrecision
	ch <- descLower
	ch <- descVerdicts
	ch <- descIgnored
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.t.Snapshot() {
		ch <- prometheus.MustNewConstMetric(descPrecision, prometheus.GaugeValue, s.Precision, s.Field, s.Label)
		ch <- prometheus.MustNewConstMetric(descLower, prometheus.GaugeValue, s.Lower, s.Field, s.Label)
		ch <- prometheus.MustNewConstMetric(descVerdicts, prometheus.GaugeValue, float64(s.N), s.Field, s.Label)
	}
	ch <- prometheus.MustNewConstMetric(descIgnored, prometheus.CounterValue, float64(c.t.Undecodable()), "undecodable")
	ch <- prometheus.MustNewConstMetric(descIgnored, prometheus.CounterValue, float64(c.t.Ignored()), "invalid_feedback")
}
