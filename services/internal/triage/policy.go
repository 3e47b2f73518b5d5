// Package triage decides, per ticket field, what autotriage does with a
// prediction: record it only (shadow), explain it in a private note
// (suggest), set the field (apply), or nothing (abstain). The defaults are
// safe: shadow for every field until an operator opts in.
package triage

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	autotriagev1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/classify"
)

// Mode is what the policy may do with a field.
type Mode int

const (
	// Shadow records predictions and changes nothing (the default).
	Shadow Mode = iota
	// Suggest explains the prediction in a private note.
	Suggest
	// Apply sets the field when the confidence clears the threshold and
	// falls back to Suggest below it.
	Apply
)

func (m Mode) String() string {
	switch m {
	case Shadow:
		return "shadow"
	case Suggest:
		return "suggest"
	case Apply:
		return "apply"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// FieldPolicy is the policy of one field. For Apply, the threshold is
// Probability when set, else the probability at which the model's held-out
// predictions reached TargetPrecision; with neither, Apply never applies.
type FieldPolicy struct {
	Mode            Mode
	Probability     float64 // apply threshold, 0 = unset
	TargetPrecision float64 // e.g. 0.95, resolved from the model's held-out curve
}

// Policy maps field names ("group", "priority", "type", "tags") to their
// policy; a field not listed is shadowed. TopK bounds the runners-up
// reported per field (default 3).
type Policy struct {
	Fields map[string]FieldPolicy
	TopK   int
}

// DefaultTopK is the number of labels reported when Policy.TopK is 0.
const DefaultTopK = 3

// ParsePolicy reads the operator's policy string: comma-separated
// field=mode[:threshold] parts, where mode is shadow, suggest or apply and
// threshold is a probability ("0.9") or a target precision in percent
// ("p95"). For example
//
//	group=apply:p95,priority=suggest:0.8,type=shadow,tags=apply:0.9
//
// An empty string is the default policy (shadow everywhere). Errors name
// the offending part.
func ParsePolicy(s string) (Policy, error) {
	p := Policy{Fields: map[string]FieldPolicy{}}
	s = strings.TrimSpace(s)
	if s == "" {
		return p, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		field, spec, ok := strings.Cut(part, "=")
		field = strings.ToLower(strings.TrimSpace(field))
		if !ok || field == "" {
			return Policy{}, fmt.Errorf("triage policy %q: want field=mode[:threshold]", part)
		}
		if !isField(field) {
			return Policy{}, fmt.Errorf("triage policy %q: unknown field %q (want group, priority, type or tags)", part, field)
		}
		if _, dup := p.Fields[field]; dup {
			return Policy{}, fmt.Errorf("triage policy %q: field %q given twice", part, field)
		}
		modeStr, thr, hasThr := strings.Cut(strings.TrimSpace(spec), ":")
		var fp FieldPolicy
		switch strings.ToLower(strings.TrimSpace(modeStr)) {
		case "shadow":
			fp.Mode = Shadow
		case "suggest":
			fp.Mode = Suggest
		case "apply":
			fp.Mode = Apply
		default:
			return Policy{}, fmt.Errorf("triage policy %q: unknown mode %q (want shadow, suggest or apply)", part, modeStr)
		}
		if hasThr {
			thr = strings.ToLower(strings.TrimSpace(thr))
			if strings.HasPrefix(thr, "p") {
				v, err := strconv.ParseFloat(thr[1:], 64)
				if err != nil || !(v > 0) || v > 100 {
					return Policy{}, fmt.Errorf("triage policy %q: target precision %q: want pNN with 0 < NN <= 100", part, thr)
				}
				fp.TargetPrecision = v / 100
			} else {
				v, err := strconv.ParseFloat(thr, 64)
				if err != nil || !(v > 0) || v > 1 {
					return Policy{}, fmt.Errorf("triage policy %q: probability %q: want 0 < p <= 1", part, thr)
				}
				fp.Probability = v
			}
		}
		p.Fields[field] = fp
	}
	return p, nil
}

func isField(f string) bool {
	for _, g := range classify.Fields {
		if f == g {
			return true
		}
	}
	return false
}

// String renders the policy in ParsePolicy's syntax, fields in canonical
// order.
func (p Policy) String() string {
	var parts []string
	for _, f := range classify.Fields {
		fp, ok := p.Fields[f]
		if !ok {
			continue
		}
		s := f + "=" + fp.Mode.String()
		switch {
		case fp.Probability > 0:
			s += ":" + strconv.FormatFloat(fp.Probability, 'g', -1, 64)
		case fp.TargetPrecision > 0:
			s += ":p" + strconv.FormatFloat(fp.TargetPrecision*100, 'g', -1, 64)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ",")
}

// thresholdCache remembers thresholds resolved from a model's held-out
// curve, keyed by model ID, field and target; models are immutable, so an
// entry never goes stale.
var thresholdCache sync.Map // thresholdKey -> resolved

type thresholdKey struct {
	model, field string
	target       float64
}

type resolved struct {
	threshold, coverage float64
	ok                  bool
}

func resolveTarget(m *classify.Model, field string, target float64) resolved {
	key := thresholdKey{m.ID(), field, target}
	if v, ok := thresholdCache.Load(key); ok {
		return v.(resolved)
	}
	var r resolved
	r.threshold, r.coverage, r.ok = m.HeldOut(field).ThresholdForPrecision(target)
	thresholdCache.Store(key, r)
	return r
}

// Decide applies the policy to a model's result for a ticket, returning one
// FieldPrediction per field (canonical order) the model predicts or the
// policy names. Rules, in order: a field the model lacks, or a ticket
// without usable text, is abstained; a shadow_only ticket is shadowed (all
// fields, so backfills measure the model against what people chose); a
// field the ticket already has (group_id, type) is abstained as "already
// set" (priority always has a value in Freshdesk, so it stays predictable
// and the writer protects a person's choice; tags only add); then the
// field's mode decides. Apply below its threshold, or with a target
// precision the held-out curve never reached, falls back to suggest with
// the reason. Tags outside shadow mode with no tag over its threshold are
// abstained.
func (p Policy) Decide(m *classify.Model, t *autotriagev1.Ticket, r classify.Result) []*autotriagev1.FieldPrediction {
	topK := p.TopK
	if topK <= 0 {
		topK = DefaultTopK
	}
	var out []*autotriagev1.FieldPrediction
	for _, field := range classify.Fields {
		_, named := p.Fields[field]
		fr, predicted := r.Field(field)
		hasModel := m != nil && m.HasField(field) && predicted
		if !hasModel && !named {
			continue
		}
		fp := &autotriagev1.FieldPrediction{Field: field}
		out = append(out, fp)
		if !hasModel {
			fp.Decision = autotriagev1.Decision_DECISION_ABSTAIN
			fp.Reason = "no model for this field"
			continue
		}
		for i, lp := range fr.Labels {
			if i >= topK {
				break
			}
			fp.TopK = append(fp.TopK, &autotriagev1.LabelScore{Label: lp.Label, Probability: lp.Probability})
		}
		if fr.MultiLabel {
			fp.Labels = append(fp.Labels, fr.Selected...)
		} else {
			fp.Label = fr.Top().Label
		}
		fp.Confidence = fr.Confidence()
		if r.Empty {
			fp.Decision = autotriagev1.Decision_DECISION_ABSTAIN
			fp.Reason = "no usable text"
			continue
		}
		if t.GetShadowOnly() {
			fp.Decision = autotriagev1.Decision_DECISION_SHADOW
			fp.Reason = "ticket version is shadow-only"
			continue
		}
		if why := alreadySet(field, t); why != "" {
			fp.Decision = autotriagev1.Decision_DECISION_ABSTAIN
			fp.Reason = why
			continue
		}
		pol := p.Fields[field]
		if fr.MultiLabel && len(fr.Selected) == 0 && pol.Mode != Shadow {
			fp.Decision = autotriagev1.Decision_DECISION_ABSTAIN
			fp.Reason = "no tag reached its threshold"
			continue
		}
		switch pol.Mode {
		case Suggest:
			fp.Decision = autotriagev1.Decision_DECISION_SUGGEST
			fp.Reason = "suggest mode"
		case Apply:
			p.decideApply(m, field, pol, fp)
		default:
			fp.Decision = autotriagev1.Decision_DECISION_SHADOW
			fp.Reason = "shadow mode"
		}
	}
	return out
}

func (p Policy) decideApply(m *classify.Model, field string, pol FieldPolicy, fp *autotriagev1.FieldPrediction) {
	threshold := pol.Probability
	source := "threshold"
	if threshold <= 0 {
		if pol.TargetPrecision <= 0 {
			fp.Decision = autotriagev1.Decision_DECISION_SUGGEST
			fp.Reason = "apply mode without a threshold or target precision"
			return
		}
		res := resolveTarget(m, field, pol.TargetPrecision)
		if !res.ok {
			fp.Decision = autotriagev1.Decision_DECISION_SUGGEST
			fp.Reason = fmt.Sprintf("target precision %s not reached on the model's held-out data", pct(pol.TargetPrecision))
			return
		}
		threshold = res.threshold
		source = fmt.Sprintf("threshold (for %s precision)", pct(pol.TargetPrecision))
	}
	fp.Threshold = threshold
	if fp.Confidence >= threshold {
		fp.Decision = autotriagev1.Decision_DECISION_APPLY
		fp.Reason = fmt.Sprintf("confidence %.3f >= %s %.3f", fp.Confidence, source, threshold)
		return
	}
	fp.Decision = autotriagev1.Decision_DECISION_SUGGEST
	fp.Reason = fmt.Sprintf("confidence %.3f < %s %.3f", fp.Confidence, source, threshold)
}

func pct(x float64) string {
	return strconv.FormatFloat(math.Round(x*1000)/10, 'f', -1, 64) + "%"
}

// alreadySet returns why the ticket's field must not be predicted over, ""
// when it is open.
func alreadySet(field string, t *autotriagev1.Ticket) string {
	switch field {
	case classify.FieldGroup:
		if t.GetGroupId() != 0 {
			return "already set"
		}
	case classify.FieldType:
		if t.GetType() != "" {
			return "already set"
		}
	}
	return ""
}
