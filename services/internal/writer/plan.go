package writer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// Reasons written into FieldOutcome.reason. Tests and dashboards match them.
const (
	ReasonApplied        = "applied"
	ReasonAlreadySet     = "already set to the predicted value"
	ReasonAlreadyHad     = "already had the predicted value"
	ReasonPersonChanged  = "changed by a person after the predicted version"
	ReasonPersonSet      = "already set by a person"
	ReasonNewerApplied   = "a newer prediction was already applied"
	ReasonOwnVersion     = "the ticket version came from autotriage's own write"
	ReasonGone           = "ticket deleted or spam"
	ReasonShadow         = "shadow mode"
	ReasonShadowOnly     = "shadow-only ticket version (backfill or replay)"
	ReasonSuggested      = "suggested in a private note"
	ReasonNotesDisabled  = "suggestion not delivered: notes are disabled (AUTOTRIAGE_WRITER_NOTES=false)"
	ReasonNoLabel        = "no label predicted"
	ReasonRejected       = "rejected by the ticket system"
	ReasonUnknownField   = "field not supported by the writer"
	reasonNotInCatalogFm = "label %q not in catalog"
	reasonRemovedFm      = "label %q not in catalog: removed from the helpdesk (never written; retraining requested)"
)

// defaultPriority is the priority Freshdesk gives a ticket nobody
// prioritised (1, Low). A ticket at that priority counts as "not set by a
// person"; any other priority was chosen by someone and is left alone.
const defaultPriority = 1

// fieldPlan is what the writer does with one field of a prediction.
type fieldPlan struct {
	pred *v1.FieldPrediction
	out  *v1.FieldOutcome
	// pending: a suggest or apply decision still to be checked against the
	// catalog and the ticket. Cleared once the field has its final action.
	pending bool
	names   []string // the label(s) in the helpdesk's names
	t       target   // resolved value (single-label fields)
	addTags []string // tags to add (tags field)
	// ownTags are predicted tags an earlier delivery of the same decision
	// added (its intent), found on the ticket: autotriage's, not a person's.
	ownTags []string
	// write: the field is part of the PUT. noted: part of the note.
	write, noted bool
	// from is the field's value in the newest known version when decided
	// (recorded with a suggestion, see ledger.Decided.From).
	from ledger.Fields
}

func (p *fieldPlan) finish(a v1.Action, reason string) {
	p.out.Action, p.out.Reason, p.pending = a, reason, false
}

// labels returns the predicted label(s) of a field.
func labels(f *v1.FieldPrediction) []string {
	if f.Field == FieldTags {
		out := make([]string, 0, len(f.Labels)+1)
		for _, l := range f.Labels {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
		if len(out) == 0 && strings.TrimSpace(f.Label) != "" {
			out = append(out, strings.TrimSpace(f.Label))
		}
		return out
	}
	if l := strings.TrimSpace(f.Label); l != "" {
		return []string{l}
	}
	return nil
}

// initialPlans settles what needs no ticket-system call: shadow, abstain,
// unknown fields and missing labels. The rest is left pending.
func initialPlans(pred *v1.Prediction) []*fieldPlan {
	shadowOnly := pred.GetTicket().GetShadowOnly()
	plans := make([]*fieldPlan, 0, len(pred.Fields))
	for _, f := range pred.Fields {
		p := &fieldPlan{pred: f, out: &v1.FieldOutcome{
			Field: f.Field, Label: strings.Join(labels(f), ","), Decision: f.Decision, Confidence: f.Confidence,
		}}
		plans = append(plans, p)
		switch {
		case f.Decision == v1.Decision_DECISION_SHADOW:
			p.finish(v1.Action_ACTION_SHADOWED, ReasonShadow)
		case f.Decision != v1.Decision_DECISION_SUGGEST && f.Decision != v1.Decision_DECISION_APPLY:
			reason := f.Reason
			if reason == "" {
				reason = "abstained"
			}
			p.finish(v1.Action_ACTION_ABSTAINED, reason)
		case shadowOnly:
			p.finish(v1.Action_ACTION_SHADOWED, ReasonShadowOnly)
		case f.Field != FieldGroup && f.Field != FieldType && f.Field != FieldPriority && f.Field != FieldTags:
			p.finish(v1.Action_ACTION_SKIPPED, ReasonUnknownField)
		case len(labels(f)) == 0:
			p.finish(v1.Action_ACTION_SKIPPED, ReasonNoLabel)
		default:
			p.pending = true
		}
	}
	return plans
}

// anyPending reports whether some field still needs the ticket system.
func anyPending(plans []*fieldPlan) bool {
	return slices.ContainsFunc(plans, func(p *fieldPlan) bool { return p.pending })
}

// skipPending gives every pending field the same final action.
func skipPending(plans []*fieldPlan, a v1.Action, reason string) {
	for _, p := range plans {
		if p.pending {
			p.finish(a, reason)
		}
	}
}

// resolvePlans maps the labels of pending fields through the label map and
// the catalog. It returns the fields whose label the catalog lacks, without
// finishing them, so the caller can refresh the catalog and try again.
func resolvePlans(plans []*fieldPlan, cat *ticketsystem.Catalog, lm LabelMap) (missing []*fieldPlan) {
	for _, p := range plans {
		if !p.pending {
			continue
		}
		ls := labels(p.pred)
		if p.pred.Field == FieldTags {
			// Tags are free-form in the helpdesk: every tag exists.
			p.names = p.names[:0]
			for _, l := range ls {
				if n := lm.Name(FieldTags, l); !slices.Contains(p.names, n) {
					p.names = append(p.names, n)
				}
			}
			continue
		}
		name := lm.Name(p.pred.Field, ls[0])
		t, ok := resolve(cat, p.pred.Field, name)
		if !ok {
			missing = append(missing, p)
			continue
		}
		p.t, p.names = t, []string{t.name}
	}
	return missing
}

// decide settles every pending field against the newest known version of
// the ticket (cur: the seen record, the predicted version or, with Reread,
// the ticket read now), the version the prediction was made from, and what
// autotriage recorded for the ticket (rec, nil if nothing). It never lets the machine overwrite
// a person: a field whose value changed after the predicted version, or that
// already held a value someone chose, is skipped.
//
// intent is the recorded intent of an earlier delivery of this same
// decision (nil if none): a field that now holds the value that delivery set
// out to write was written by it (a crash came after its PUT, before its
// outcome), and is reported APPLIED as that delivery would have reported it,
// not as a value found already set.
func decide(plans []*fieldPlan, pred *v1.Prediction, cur *ticketsystem.Ticket, rec *ledger.Applied, intent *ledger.Intent, cat *ticketsystem.Catalog, notes bool) {
	was := pred.GetTicket()
	for _, p := range plans {
		if !p.pending {
			continue
		}
		suggest := p.pred.Decision == v1.Decision_DECISION_SUGGEST
		switch p.pred.Field {
		case FieldTags:
			var mine, removed []string
			if intent != nil {
				mine = intent.Fields.Tags
			}
			if rec != nil {
				removed = rec.Fields.Tags
			}
			p.from = ledger.Fields{Tags: slices.Clone(cur.Tags)}
			decideTags(p, was, cur, mine, removed, suggest, notes)
		case FieldGroup:
			pv, cv := cur.GroupID, cur.GroupID
			if was != nil {
				pv = was.GroupId
			}
			p.from = ledger.Fields{GroupID: cv, GroupName: groupName(cat, cv)}
			own := rec != nil && cv != 0 && (rec.Fields.GroupID == cv || (rec.Intent != nil && rec.Intent.Fields.GroupID == cv))
			mine := intent != nil && intent.Fields.GroupID == p.t.groupID
			p.out.PreviousValue = groupName(cat, previous(mine, pv, cv, p.t.groupID))
			decideSingle(p, pv == p.t.groupID, cv == p.t.groupID, pv != cv, pv != 0, own, mine, suggest, notes)
		case FieldType:
			pv, cv := cur.Type, cur.Type
			if was != nil {
				pv = was.Type
			}
			p.from = ledger.Fields{Type: cv}
			own := rec != nil && cv != "" && (rec.Fields.Type == cv || (rec.Intent != nil && rec.Intent.Fields.Type == cv))
			mine := intent != nil && intent.Fields.Type != "" && intent.Fields.Type == p.t.typ
			p.out.PreviousValue = previous(mine, pv, cv, p.t.typ)
			decideSingle(p, pv == p.t.typ, cv == p.t.typ, pv != cv, pv != "", own, mine, suggest, notes)
		case FieldPriority:
			pv, cv := cur.Priority, cur.Priority
			if was != nil {
				pv = int(was.Priority)
			}
			p.from = ledger.Fields{Priority: int32(cv)}
			own := rec != nil && cv != 0 && (int(rec.Fields.Priority) == cv || (rec.Intent != nil && int(rec.Intent.Fields.Priority) == cv))
			mine := intent != nil && intent.Fields.Priority != 0 && int(intent.Fields.Priority) == p.t.priority
			p.out.PreviousValue = priorityName(cat, previous(mine, pv, cv, p.t.priority))
			decideSingle(p, pv == p.t.priority, cv == p.t.priority, pv != cv, pv != 0 && pv != defaultPriority, own, mine, suggest, notes)
		}
	}
}

// previous is the value an outcome reports as the field's previous one: the
// current value, except when an earlier delivery of the same decision wrote
// the target already (mine), whose previous value was the predicted
// version's (the best this delivery knows of it).
func previous[T comparable](mine bool, pv, cv, target T) T {
	if mine && cv == target {
		return pv
	}
	return cv
}

// decideSingle applies the rules to a single-valued field. predHad: the
// predicted version already held the target; curHas: the ticket holds it
// now; changed: the value changed since the predicted version; set: the
// predicted version held a value chosen by someone; own: the current value
// is one autotriage wrote; mine: an earlier delivery of this same decision
// set out to write the target (ledger.Intent).
func decideSingle(p *fieldPlan, predHad, curHas, changed, set, own, mine, suggest, notes bool) {
	switch {
	case curHas && predHad:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonAlreadyHad)
	case suggest && curHas:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonAlreadySet)
	case suggest && !notes:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonNotesDisabled)
	case suggest:
		p.noted = true
		p.finish(v1.Action_ACTION_SUGGESTED, ReasonSuggested)
	case curHas && mine:
		// An earlier delivery of this decision wrote it and died before its
		// outcome: report what it did (and its note), send nothing again.
		p.noted = true
		p.out.NewValue = p.t.name
		p.finish(v1.Action_ACTION_APPLIED, ReasonApplied)
	case curHas:
		// A person chose the same value (or an earlier write that left no
		// intent did): nothing to send, and the value stands.
		p.out.NewValue = p.t.name
		p.finish(v1.Action_ACTION_APPLIED, ReasonAlreadySet)
	case changed && !own:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonPersonChanged)
	case !changed && set && !own:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonPersonSet)
	default:
		p.write, p.noted = true, true
		p.out.NewValue = p.t.name
		p.finish(v1.Action_ACTION_APPLIED, ReasonApplied)
	}
}

// decideTags merges predicted tags into the ticket's tags; tags are only
// ever added, so no person's choice can be overwritten: a predicted tag the
// predicted version had and the ticket no longer has, or one autotriage
// added earlier (removed: the record's tags) that is gone now, was removed
// by a person and is not put back.
//
// mine: the tags an earlier delivery of this same decision set out to add
// (see decide).
func decideTags(p *fieldPlan, was *v1.Ticket, cur *ticketsystem.Ticket, mine, removed []string, suggest, notes bool) {
	p.out.PreviousValue = strings.Join(cur.Tags, ",")
	predHad := was != nil && containsAll(was.Tags, p.names)
	p.addTags, p.ownTags = p.addTags[:0], p.ownTags[:0]
	dropped := 0
	for _, n := range p.names {
		switch {
		case slices.Contains(cur.Tags, n):
			if slices.Contains(mine, n) && (was == nil || !slices.Contains(was.Tags, n)) {
				p.ownTags = append(p.ownTags, n)
			}
		case (was != nil && slices.Contains(was.Tags, n)) || slices.Contains(removed, n):
			dropped++ // a person removed it
		default:
			p.addTags = append(p.addTags, n)
		}
	}
	curHas := len(p.addTags) == 0 && dropped == 0
	own := len(p.ownTags) > 0
	if own && curHas && !predHad && was != nil {
		p.out.PreviousValue = strings.Join(was.Tags, ",")
	}
	switch {
	case curHas && predHad:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonAlreadyHad)
	case len(p.addTags) == 0 && dropped > 0:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonPersonChanged)
	case curHas && suggest:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonAlreadySet)
	case suggest && !notes:
		p.finish(v1.Action_ACTION_SKIPPED, ReasonNotesDisabled)
	case suggest:
		p.noted = true
		p.finish(v1.Action_ACTION_SUGGESTED, ReasonSuggested)
	case curHas && own:
		p.noted = true
		p.out.NewValue = strings.Join(cur.Tags, ",")
		p.finish(v1.Action_ACTION_APPLIED, ReasonApplied)
	case curHas:
		p.ownTags = p.ownTags[:0]
		p.out.NewValue = strings.Join(cur.Tags, ",")
		p.finish(v1.Action_ACTION_APPLIED, ReasonAlreadySet)
	default:
		p.write, p.noted = true, true
		p.out.NewValue = strings.Join(mergeTags(cur.Tags, p.addTags), ",")
		p.finish(v1.Action_ACTION_APPLIED, ReasonApplied)
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// mergeTags returns base followed by the tags of add it lacks, never nil.
func mergeTags(base []string, add ...[]string) []string {
	out := make([]string, 0, len(base)+4)
	for _, list := range append([][]string{base}, add...) {
		for _, t := range list {
			if t != "" && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// notInCatalog finishes fields whose label the catalog does not have (after
// a refresh): never written, and reported removed once per (field, label)
// so the trainer retrains without it.
func (s *Stage) notInCatalog(ctx context.Context, missing []*fieldPlan) {
	for _, p := range missing {
		label := labels(p.pred)[0]
		name := s.labelMap.Name(p.pred.Field, label)
		reason := fmt.Sprintf(reasonNotInCatalogFm, name)
		if s.labelRemoved(ctx, p.pred.Field, label) {
			reason = fmt.Sprintf(reasonRemovedFm, name)
		}
		p.finish(v1.Action_ACTION_SKIPPED, reason)
	}
}

// writtenLabelsGone reads the catalog again after a rejected write and
// names the written catalog values it no longer has ("group \"Billing\"").
func (s *Stage) writtenLabelsGone(ctx context.Context, plans []*fieldPlan) []string {
	var written []*fieldPlan
	for _, p := range plans {
		if p.write && p.pred.Field != FieldTags {
			written = append(written, p)
		}
	}
	if len(written) == 0 {
		return nil
	}
	// A rejected write is rare, and the likeliest cause of one is a value
	// deleted since the cached read: refresh sooner than for unknown labels.
	cat, refreshed, err := s.catalog.refreshAfter(ctx, min(s.cfg.CatalogMinRefresh, time.Second))
	if err != nil || !refreshed {
		return nil
	}
	s.catalogFetched(ctx, cat)
	var gone []string
	for _, p := range written {
		if t, ok := resolve(cat, p.pred.Field, p.t.name); !ok || t != p.t {
			gone = append(gone, fmt.Sprintf("%s %q", p.pred.Field, p.t.name))
		}
	}
	return gone
}

// buildUpdate is the single PUT for the ticket: every field to write, and
// the tags merged with the ticket's newest known ones plus the autotriage
// tag whenever anything is written (a field or a note). It is zero when
// nothing changes, unless mustPut: a note was just posted, and the PUT that
// follows it (carrying at least the tags) is what tells autotriage the
// version its writes produced.
func buildUpdate(plans []*fieldPlan, cur *ticketsystem.Ticket, tag string, noting, mustPut bool) ticketsystem.Update {
	var u ticketsystem.Update
	var add []string
	wrote := noting || mustPut
	for _, p := range plans {
		if !p.write {
			continue
		}
		wrote = true
		switch p.pred.Field {
		case FieldGroup:
			u.GroupID = &p.t.groupID
		case FieldType:
			u.Type = &p.t.typ
		case FieldPriority:
			u.Priority = &p.t.priority
		case FieldTags:
			add = append(add, p.addTags...)
		}
	}
	if wrote && tag != "" {
		add = append(add, tag)
	}
	if merged := mergeTags(cur.Tags, add); mustPut || len(merged) != len(mergeTags(cur.Tags)) {
		// Freshdesk replaces the whole set: send the union with the newest
		// tags known (see Stage.current).
		u.SetTags = merged
	}
	return u
}
