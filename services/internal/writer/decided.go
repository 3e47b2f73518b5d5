package writer

import (
	"slices"
	"strconv"
	"strings"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// recordDecided records in r, per field (per tag), the model label behind
// every value this delivery applied (ledger.Applied.Decided) and every
// value it suggested in a note that was written (Applied.Suggested), with
// the model and the predicted version: the fetcher reads them to report
// what people made of each value (live precision per class). An applied
// value replaces an earlier suggestion of the same field (its later change
// to the target is autotriage's, not a person's acceptance).
func (s *Stage) recordDecided(r *ledger.Applied, a *attempt, cat *ticketsystem.Catalog) {
	pred := a.pred
	at := s.now().UTC()
	src := pred.TicketUpdatedAt.AsTime().UTC()
	for _, p := range a.plans {
		applied := p.out.Action == v1.Action_ACTION_APPLIED && p.out.Reason == ReasonApplied
		suggested := p.out.Action == v1.Action_ACTION_SUGGESTED && a.noteWritten
		if !applied && !suggested {
			continue
		}
		for _, d := range s.decidedOf(p, cat) {
			d.ModelID, d.ModelVersion, d.SourceUpdatedAt, d.At = pred.ModelId, pred.ModelVersion, src, at
			if applied {
				r.Decided = ledger.PutDecided(r.Decided, d)
				r.Suggested = ledger.DropDecided(r.Suggested, d.Key())
				continue
			}
			d.From = p.from
			r.Suggested = ledger.PutDecided(r.Suggested, d)
		}
	}
}

// decidedOf is the label and helpdesk value of a planned field: one entry,
// or one per tag autotriage adds (applied) or proposes (suggested).
func (s *Stage) decidedOf(p *fieldPlan, cat *ticketsystem.Catalog) []ledger.Decided {
	field := p.pred.Field
	if field == FieldTags {
		var out []ledger.Decided
		for _, l := range labels(p.pred) {
			name := s.labelMap.Name(FieldTags, l)
			if p.out.Action == v1.Action_ACTION_APPLIED && !slices.Contains(p.addTags, name) && !slices.Contains(p.ownTags, name) {
				continue // the ticket had it already: not autotriage's value
			}
			out = append(out, ledger.Decided{Field: field, Label: l, Value: name, Target: ledger.Fields{Tags: []string{name}}})
		}
		return out
	}
	d := ledger.Decided{Field: field, Label: strings.TrimSpace(p.pred.Label), Value: p.t.name}
	switch field {
	case FieldGroup:
		d.Target = ledger.Fields{GroupID: p.t.groupID, GroupName: groupName(cat, p.t.groupID)}
	case FieldType:
		d.Target = ledger.Fields{Type: p.t.typ}
	case FieldPriority:
		d.Target = ledger.Fields{Priority: int32(p.t.priority)}
		if d.Value == "" {
			d.Value = strconv.Itoa(p.t.priority)
		}
	default:
		return nil
	}
	return []ledger.Decided{d}
}
