package autotriagev1

// Hand-written helpers beside the generated code (buf generate leaves this
// file alone).

import (
	"strconv"
	"time"
)

// Short is the lower-case name used in metrics labels, reports and the CLI:
// "shadow", "suggest", "apply", "abstain" or "unspecified".
func (d Decision) Short() string {
	switch d {
	case Decision_DECISION_SHADOW:
		return "shadow"
	case Decision_DECISION_SUGGEST:
		return "suggest"
	case Decision_DECISION_APPLY:
		return "apply"
	case Decision_DECISION_ABSTAIN:
		return "abstain"
	}
	return "unspecified"
}

// Short is the lower-case name used in metrics labels and reports:
// "applied", "suggested", "shadowed", "skipped", "failed", "abstained" or
// "unspecified".
func (a Action) Short() string {
	switch a {
	case Action_ACTION_APPLIED:
		return "applied"
	case Action_ACTION_SUGGESTED:
		return "suggested"
	case Action_ACTION_SHADOWED:
		return "shadowed"
	case Action_ACTION_SKIPPED:
		return "skipped"
	case Action_ACTION_FAILED:
		return "failed"
	case Action_ACTION_ABSTAINED:
		return "abstained"
	}
	return "unspecified"
}

// PredictionKey names a prediction by what it was made from: the ticket
// version, the model and, for backfilled or replayed tickets, their batch.
// Every attempt at the same prediction (its redeliveries, a DLQ retry, a
// replay of PREDICTIONS) shares the key; Outcome.attempt tells them apart.
func PredictionKey(p *Prediction) string {
	if p == nil {
		return ""
	}
	// A prediction names its ticket version itself; older ones (and some
	// tests) only carry it in the embedded ticket.
	t := p.GetTicket()
	system, account, id, at := p.GetSystem(), p.GetAccount(), p.GetTicketId(), p.GetTicketUpdatedAt()
	if system == "" {
		system = t.GetSystem()
	}
	if account == "" {
		account = t.GetAccount()
	}
	if id == 0 {
		id = t.GetId()
	}
	if at == nil {
		at = t.GetUpdatedAt()
	}
	k := system + ":" + account + ":" + strconv.FormatInt(id, 10) + ":" +
		at.AsTime().UTC().Format(time.RFC3339Nano) + ":" + p.GetModelId()
	if b := p.GetTicket().GetBatchId(); b != "" {
		k += ":" + b
	}
	return k
}

// Key returns the outcome's prediction_key; for outcomes stored before the
// field existed, the key of the prediction they carry, else of their own
// ticket version and model.
func (o *Outcome) Key() string {
	if k := o.GetPredictionKey(); k != "" {
		return k
	}
	if p := o.GetPrediction(); p != nil {
		return PredictionKey(p)
	}
	return PredictionKey(&Prediction{System: o.GetSystem(), Account: o.GetAccount(), TicketId: o.GetTicketId(),
		TicketUpdatedAt: o.GetTicketUpdatedAt(), ModelId: o.GetModelId()})
}
