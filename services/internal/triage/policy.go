// Package triage decides, per ticket field, what autotriage does with a
// prediction: record it only (shadow), explain it in a private note
// (suggest), set the field (apply), or nothing (abstain). The defaults are
// safe: shadow for every field until an operator opts in.
package triage

import (
	"fmt"
	"math"
	"sort"
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

// FieldPolicy is the policy of one field or class. For Apply, the
// threshold is Probability when set, else the probability at which the
// model's held-out predictions reached TargetPrecision (per class, see
// Decide); with neither, Apply never applies.
type FieldPolicy struct {
	Mode            Mode
	Probability     float64 // apply threshold, 0 = unset
	TargetPrecision float64 // e.g. 0.95, resolved from the model's held-out curve
}

// Policy maps field names ("group", "priority", "type", "tags") to their
// policy; a field not listed is shadowed. Classes holds per-class settings
// (field -> label -> policy) that replace the field's for predictions of
// that label; nil when there are none. TopK bounds the runners-up reported
// per field (default 3).
//
// Demoted lists the classes live precision demoted to suggest (field ->
// label -> why). It is not part of the policy string: it comes from the
// policy document in KV (Doc.Effective) and is applied over the classes'
// Apply mode.
type Policy struct {
	Fields  map[string]FieldPolicy
	Classes map[string]map[string]FieldPolicy
	TopK    int
	Demoted map[string]map[string]string
}

// DefaultTopK is the number of labels reported when Policy.TopK is 0.
const DefaultTopK = 3

// maxLabelBytes bounds a class name in the policy string (operator input).
const maxLabelBytes = 256

// ParsePolicy reads the operator's policy string: comma-separated
// field=mode[:threshold] and field[class]=mode[:threshold] parts, where
// mode is shadow, suggest or apply and threshold is a probability ("0.9")
// or a target precision in percent ("p95"). For example
//
//	group=apply:p95,group[Billing]=suggest,priority=suggest:0.8,tags=apply:0.9
//
// A class is a label as the model names it (case-sensitive, surrounding
// spaces trimmed); inside the brackets a backslash escapes the next
// character, so "\]" and "\\" stand for "]" and "\", and commas need no
// escape. An empty string is the default policy (shadow everywhere).
// Errors name the offending part.
func ParsePolicy(s string) (Policy, error) {
	p := Policy{Fields: map[string]FieldPolicy{}}
	s = strings.TrimSpace(s)
	if s == "" {
		return p, nil
	}
	parts, err := splitParts(s)
	if err != nil {
		return Policy{}, err
	}
	for _, part := range parts {
		part = strings.TrimSpace(part)
		field, label, hasLabel, spec, err := parseKey(part)
		if err != nil {
			return Policy{}, err
		}
		if !isField(field) {
			return Policy{}, fmt.Errorf("triage policy %q: unknown field %q (want group, priority, type or tags)", part, field)
		}
		fp, err := parseSpec(part, spec)
		if err != nil {
			return Policy{}, err
		}
		if !hasLabel {
			if _, dup := p.Fields[field]; dup {
				return Policy{}, fmt.Errorf("triage policy %q: field %q given twice", part, field)
			}
			p.Fields[field] = fp
			continue
		}
		if _, dup := p.Classes[field][label]; dup {
			return Policy{}, fmt.Errorf("triage policy %q: class %q of %s given twice", part, label, field)
		}
		if p.Classes == nil {
			p.Classes = map[string]map[string]FieldPolicy{}
		}
		if p.Classes[field] == nil {
			p.Classes[field] = map[string]FieldPolicy{}
		}
		p.Classes[field][label] = fp
	}
	return p, nil
}

// splitParts splits at commas outside brackets.
func splitParts(s string) ([]string, error) {
	var parts []string
	start, inBracket, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inBracket && c == '\\':
			escaped = true
		case inBracket && c == ']':
			inBracket = false
		case !inBracket && c == '[':
			inBracket = true
		case !inBracket && c == ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if inBracket {
		return nil, fmt.Errorf("triage policy %q: unterminated [class]", s[start:])
	}
	return append(parts, s[start:]), nil
}

// parseKey reads "field=spec" or "field[class]=spec".
func parseKey(part string) (field, label string, hasLabel bool, spec string, err error) {
	i := strings.IndexAny(part, "[=")
	if i < 0 {
		return "", "", false, "", fmt.Errorf("triage policy %q: want field=mode[:threshold] or field[class]=mode[:threshold]", part)
	}
	field = strings.ToLower(strings.TrimSpace(part[:i]))
	rest := part[i:]
	if rest[0] == '[' {
		var b strings.Builder
		j := 1
		for ; j < len(rest) && rest[j] != ']'; j++ {
			if rest[j] == '\\' && j+1 < len(rest) {
				j++
			}
			b.WriteByte(rest[j])
		}
		if j >= len(rest) {
			return "", "", false, "", fmt.Errorf("triage policy %q: unterminated [class]", part)
		}
		label, hasLabel = strings.TrimSpace(b.String()), true
		if label == "" {
			return "", "", false, "", fmt.Errorf("triage policy %q: empty [class]", part)
		}
		if len(label) > maxLabelBytes {
			return "", "", false, "", fmt.Errorf("triage policy %q: class longer than %d bytes", part, maxLabelBytes)
		}
		rest = strings.TrimLeft(rest[j+1:], " \t")
	}
	if field == "" || rest == "" || rest[0] != '=' {
		return "", "", false, "", fmt.Errorf("triage policy %q: want field=mode[:threshold] or field[class]=mode[:threshold]", part)
	}
	return field, label, hasLabel, rest[1:], nil
}

func parseSpec(part, spec string) (FieldPolicy, error) {
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
		return fp, fmt.Errorf("triage policy %q: unknown mode %q (want shadow, suggest or apply)", part, modeStr)
	}
	if hasThr {
		thr = strings.ToLower(strings.TrimSpace(thr))
		if strings.HasPrefix(thr, "p") {
			v, err := strconv.ParseFloat(thr[1:], 64)
			if err != nil || !(v > 0) || v > 100 {
				return fp, fmt.Errorf("triage policy %q: target precision %q: want pNN with 0 < NN <= 100", part, thr)
			}
			fp.TargetPrecision = v / 100
		} else {
			v, err := strconv.ParseFloat(thr, 64)
			if err != nil || !(v > 0) || v > 1 {
				return fp, fmt.Errorf("triage policy %q: probability %q: want 0 < p <= 1", part, thr)
			}
			fp.Probability = v
		}
	}
	return fp, nil
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
// order, each followed by its classes in label order. Demotions are not
// part of it.
func (p Policy) String() string {
	var parts []string
	for _, f := range classify.Fields {
		if fp, ok := p.Fields[f]; ok {
			parts = append(parts, f+"="+fp.spec())
		}
		labels := make([]string, 0, len(p.Classes[f]))
		for l := range p.Classes[f] {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		for _, l := range labels {
			parts = append(parts, f+"["+labelEscaper.Replace(l)+"]="+p.Classes[f][l].spec())
		}
	}
	return strings.Join(parts, ",")
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `]`, `\]`)

func (fp FieldPolicy) spec() string {
	s := fp.Mode.String()
	switch {
	case fp.Probability > 0:
		s += ":" + strconv.FormatFloat(fp.Probability, 'g', -1, 64)
	case fp.TargetPrecision > 0:
		s += ":p" + strconv.FormatFloat(fp.TargetPrecision*100, 'g', -1, 64)
	}
	return s
}

// For returns the policy of a class: its own setting when the policy has
// one (class true), else its field's.
func (p Policy) For(field, label string) (fp FieldPolicy, class bool) {
	if cp, ok := p.Classes[field][label]; ok {
		return cp, true
	}
	return p.Fields[field], false
}

// names reports whether the policy mentions the field at all.
func (p Policy) names(field string) bool {
	_, ok := p.Fields[field]
	return ok || len(p.Classes[field]) > 0
}

// MinHeldOutEvidence is the fewest held-out predictions of a class at or
// above its resolved threshold for a target precision to count: below it
// the precision measured there is too noisy to trust (20 predictions at
// 95% is one miss), so the class stays in suggest.
const MinHeldOutEvidence = 20

// thresholdCache remembers thresholds resolved from a model's held-out
// curves, keyed by model ID, field, class and target; models are
// immutable, so an entry never goes stale.
var thresholdCache sync.Map // thresholdKey -> Resolved

type thresholdKey struct {
	model, field, label string
	target              float64
}

// Resolved is a target precision resolved against a model's held-out data
// for one class.
type Resolved struct {
	OK bool
	// Threshold is the probability to apply at, with how the class's
	// held-out predictions at or above it fared: Precision, Coverage (the
	// class's recall there) and Count.
	Threshold, Precision, Coverage float64
	Count                          int
	// PerClass is false when the model has no class curves (artifacts
	// trained before them) and the field's curve was used.
	PerClass bool
	// Why explains !OK.
	Why string
}

// ResolveTarget finds the threshold at which the class's held-out
// predictions reached target precision. Per class when the model has class
// curves: a class whose curve never reaches target, or reaches it with
// fewer than MinHeldOutEvidence predictions, is not resolved. Without class
// curves the field's curve decides, as before per-class curves existed.
func ResolveTarget(m *classify.Model, field, label string, target float64) Resolved {
	key := thresholdKey{m.ID(), field, label, target}
	if v, ok := thresholdCache.Load(key); ok {
		return v.(Resolved)
	}
	r := resolveTarget(m.HeldOut(field), label, target)
	thresholdCache.Store(key, r)
	return r
}

func resolveTarget(rep *classify.FieldReport, label string, target float64) Resolved {
	if c := rep.Class(label); c != nil {
		pt, ok := c.ThresholdForPrecision(target)
		switch {
		case !ok:
			return Resolved{PerClass: true, Why: fmt.Sprintf("target precision %s not reached by class %q on the model's held-out data", pct(target), label)}
		case pt.Count < MinHeldOutEvidence:
			return Resolved{PerClass: true, Threshold: pt.Threshold, Precision: pt.Precision, Coverage: pt.Coverage, Count: pt.Count,
				Why: fmt.Sprintf("class %q has %d held-out predictions at its %s threshold %.3f, fewer than the %d needed", label, pt.Count, pct(target), pt.Threshold, MinHeldOutEvidence)}
		}
		return Resolved{OK: true, PerClass: true, Threshold: pt.Threshold, Precision: pt.Precision, Coverage: pt.Coverage, Count: pt.Count}
	}
	th, cov, ok := rep.ThresholdForPrecision(target)
	if !ok {
		return Resolved{Why: fmt.Sprintf("target precision %s not reached on the model's held-out data", pct(target))}
	}
	r := Resolved{OK: true, Threshold: th, Coverage: cov}
	if pt, ok := rep.At(th); ok {
		r.Precision, r.Count = pt.Precision, pt.Count
	}
	return r
}

// HeldOutPrecision is how precise the class's held-out predictions at or
// above threshold were, with their count (the field's when the model has
// no class curves); ok is false without held-out data.
func HeldOutPrecision(m *classify.Model, field, label string, threshold float64) (precision float64, n int, ok bool) {
	pt, ok := heldOutAt(m, field, label, threshold)
	return pt.Precision, pt.Count, ok
}

func heldOutAt(m *classify.Model, field, label string, threshold float64) (classify.CurvePoint, bool) {
	rep := m.HeldOut(field)
	if c := rep.Class(label); c != nil {
		if pt, ok := c.At(threshold); ok {
			return pt, pt.Count > 0
		}
	}
	if pt, ok := rep.At(threshold); ok {
		return pt, pt.Count > 0
	}
	return classify.CurvePoint{}, false
}

// Decide applies the policy to a model's result for a ticket, returning one
// FieldPrediction per field (canonical order) the model predicts or the
// policy names. Rules, in order: a field the model lacks, or a ticket
// without usable text, is abstained; a shadow_only ticket is shadowed (all
// fields, so backfills measure the model against what people chose); a
// field the ticket already has (group_id, type) is abstained as "already
// set" (priority always has a value in Freshdesk, so it stays predictable
// and the writer protects a person's choice; tags only add); then the
// policy of the predicted class decides: its own [class] setting, else its
// field's. A class live precision demoted is suggested. Apply below its
// threshold, or with a target precision the class's held-out curve never
// reached (or reached on fewer than MinHeldOutEvidence predictions), falls
// back to suggest with the reason. Tags outside shadow mode with no tag
// over its threshold are abstained; with several tags selected, the field
// gets the most cautious of their decisions (shadow, then suggest, then
// apply), so a tag is never applied on the strength of another.
func (p Policy) Decide(m *classify.Model, t *autotriagev1.Ticket, r classify.Result) []*autotriagev1.FieldPrediction {
	topK := p.TopK
	if topK <= 0 {
		topK = DefaultTopK
	}
	var out []*autotriagev1.FieldPrediction
	for _, field := range classify.Fields {
		named := p.names(field)
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
		if fr.MultiLabel && len(fr.Selected) == 0 && p.Fields[field].Mode != Shadow {
			fp.Decision = autotriagev1.Decision_DECISION_ABSTAIN
			fp.Reason = "no tag reached its threshold"
			continue
		}
		p.decideClasses(m, field, fr, fp)
	}
	return out
}

// verdict is the decision for one predicted class.
type verdict struct {
	decision  autotriagev1.Decision
	reason    string
	threshold float64
}

// caution orders decisions from the most cautious.
func caution(d autotriagev1.Decision) int {
	switch d {
	case autotriagev1.Decision_DECISION_SHADOW:
		return 0
	case autotriagev1.Decision_DECISION_SUGGEST:
		return 1
	}
	return 2
}

// decideClasses decides every selected class (the top label, or each
// selected tag) and gives the field the most cautious verdict.
func (p Policy) decideClasses(m *classify.Model, field string, fr classify.FieldResult, fp *autotriagev1.FieldPrediction) {
	classes := []classify.LabelProb{fr.Top()}
	if fr.MultiLabel {
		classes = classes[:0]
		if len(fr.Selected) == 0 { // shadow mode: nothing selected to decide on
			fp.Decision = autotriagev1.Decision_DECISION_SHADOW
			fp.Reason = "shadow mode"
			return
		}
		for _, l := range fr.Selected {
			lp := classify.LabelProb{Label: l, Probability: fp.Confidence}
			for _, x := range fr.Labels {
				if x.Label == l {
					lp.Probability = x.Probability
				}
			}
			classes = append(classes, lp)
		}
	}
	var best verdict
	for i, c := range classes {
		v := p.decideClass(m, field, c.Label, c.Probability, len(classes) > 1)
		if i == 0 || caution(v.decision) < caution(best.decision) ||
			(v.decision == autotriagev1.Decision_DECISION_APPLY && best.decision == v.decision && v.threshold > best.threshold) {
			best = v
		}
	}
	fp.Decision, fp.Reason, fp.Threshold = best.decision, best.reason, best.threshold
}

// decideClass decides one class at confidence conf. named adds the class to
// reasons that would otherwise not say which tag they are about.
func (p Policy) decideClass(m *classify.Model, field, label string, conf float64, named bool) verdict {
	pol, own := p.For(field, label)
	prefix := ""
	if own || named {
		prefix = fmt.Sprintf("class %q: ", label)
	}
	switch pol.Mode {
	case Suggest:
		return verdict{decision: autotriagev1.Decision_DECISION_SUGGEST, reason: prefix + "suggest mode"}
	case Apply:
		if why, ok := p.Demoted[field][label]; ok {
			return verdict{decision: autotriagev1.Decision_DECISION_SUGGEST, reason: fmt.Sprintf("class %q demoted to suggest by live precision: %s", label, why)}
		}
		return decideApply(m, field, label, conf, pol, prefix)
	}
	return verdict{decision: autotriagev1.Decision_DECISION_SHADOW, reason: prefix + "shadow mode"}
}

func decideApply(m *classify.Model, field, label string, conf float64, pol FieldPolicy, prefix string) verdict {
	threshold := pol.Probability
	source := "threshold"
	if threshold <= 0 {
		if pol.TargetPrecision <= 0 {
			return verdict{decision: autotriagev1.Decision_DECISION_SUGGEST, reason: prefix + "apply mode without a threshold or target precision"}
		}
		res := ResolveTarget(m, field, label, pol.TargetPrecision)
		if !res.OK {
			return verdict{decision: autotriagev1.Decision_DECISION_SUGGEST, reason: res.Why}
		}
		threshold = res.Threshold
		source = fmt.Sprintf("threshold (for %s precision)", pct(pol.TargetPrecision))
		if res.PerClass {
			source = fmt.Sprintf("threshold (for %s precision of %q)", pct(pol.TargetPrecision), label)
			prefix = ""
		}
	}
	if conf >= threshold {
		return verdict{autotriagev1.Decision_DECISION_APPLY, fmt.Sprintf("%sconfidence %.3f >= %s %.3f", prefix, conf, source, threshold), threshold}
	}
	return verdict{autotriagev1.Decision_DECISION_SUGGEST, fmt.Sprintf("%sconfidence %.3f < %s %.3f", prefix, conf, source, threshold), threshold}
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

// ClassStatus is what the policy does with one class of a model: the mode
// configured for it (from its [class] setting or its field's), the mode in
// force after demotions and held-out evidence, and the threshold with the
// held-out quality behind it.
type ClassStatus struct {
	Field     string  `json:"field"`
	Label     string  `json:"label"`
	Setting   string  `json:"setting"` // the configured mode[:threshold]
	Own       bool    `json:"own"`     // set for the class itself, not its field
	Effective string  `json:"effective"`
	Threshold float64 `json:"threshold,omitempty"`
	// The class's held-out predictions at or above Threshold.
	HeldOutPrecision float64 `json:"held_out_precision,omitempty"`
	HeldOutCoverage  float64 `json:"held_out_coverage,omitempty"`
	HeldOutCount     int     `json:"held_out_count,omitempty"`
	Reason           string  `json:"reason,omitempty"`
}

// ClassStatuses reports, for every field and label of the model, what the policy
// does with it (Decide's rules for an open ticket, before confidence).
func (p Policy) ClassStatuses(m *classify.Model) []ClassStatus {
	var out []ClassStatus
	for _, field := range classify.Fields {
		var labels []string
		for _, fi := range m.Metadata().Fields {
			if fi.Name == field {
				labels = fi.Labels
			}
		}
		for _, label := range labels {
			pol, own := p.For(field, label)
			cs := ClassStatus{Field: field, Label: label, Setting: pol.spec(), Own: own, Effective: pol.Mode.String()}
			if pol.Mode == Apply {
				switch why, demoted := p.Demoted[field][label]; {
				case demoted:
					cs.Effective, cs.Reason = Suggest.String(), "demoted by live precision: "+why
				case pol.Probability > 0:
					cs.Threshold = pol.Probability
					if pt, ok := heldOutAt(m, field, label, pol.Probability); ok {
						cs.HeldOutPrecision, cs.HeldOutCoverage, cs.HeldOutCount = pt.Precision, pt.Coverage, pt.Count
					}
				case pol.TargetPrecision > 0:
					r := ResolveTarget(m, field, label, pol.TargetPrecision)
					cs.Threshold, cs.HeldOutPrecision, cs.HeldOutCoverage, cs.HeldOutCount = r.Threshold, r.Precision, r.Coverage, r.Count
					if !r.OK {
						cs.Effective, cs.Reason = Suggest.String(), r.Why
					} else if !r.PerClass {
						cs.Reason = "model has no per-class curves: field threshold"
					}
				default:
					cs.Effective, cs.Reason = Suggest.String(), "apply mode without a threshold or target precision"
				}
			}
			out = append(out, cs)
		}
	}
	return out
}
