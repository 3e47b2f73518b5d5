// Package outcomes is how every reader of the OUTCOMES stream (the CLI's
// reports, retraining from feedback, dashboards built on the stream) sees
// the audit trail: one decision outcome per prediction, the latest
// attempt's. A prediction can have several: an operator's `dlq retry` or
// `replay` of PREDICTIONS is a new attempt (Outcome.attempt) whose outcome
// supersedes the earlier one, say FAILED on its last delivery and APPLIED
// after the retry.
package outcomes

import (
	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
)

// Latest keeps the latest decision outcome per prediction
// (v1.Outcome.Key) of outcomes added in stream order. The zero value is
// ready to use; it is not safe for concurrent use.
type Latest struct {
	index map[string]int
	items []*v1.Outcome
}

// Add records o, replacing an earlier outcome of the same prediction. It
// ignores outcomes that are not decisions (overrides are observations of
// their own) and returns whether o was kept.
func (l *Latest) Add(o *v1.Outcome) bool {
	if o == nil || o.GetKind() != v1.OutcomeKind_OUTCOME_KIND_DECISION {
		return false
	}
	if l.index == nil {
		l.index = map[string]int{}
	}
	k := o.Key()
	if i, ok := l.index[k]; ok {
		l.items[i] = o
		return true
	}
	l.index[k] = len(l.items)
	l.items = append(l.items, o)
	return true
}

// Outcomes returns the kept outcomes, one per prediction, in the order
// their predictions first appeared.
func (l *Latest) Outcomes() []*v1.Outcome { return l.items }

// Len is the number of predictions with an outcome.
func (l *Latest) Len() int { return len(l.items) }
