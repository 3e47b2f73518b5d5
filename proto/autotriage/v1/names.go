package autotriagev1

// Hand-written helpers beside the generated code (buf generate leaves this
// file alone).

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
