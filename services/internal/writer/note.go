package writer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/autotriage/autotriage/proto/autotriage/v1"
	"github.com/autotriage/autotriage/services/internal/ledger"
	"github.com/autotriage/autotriage/services/internal/pipeline"
	"github.com/autotriage/autotriage/services/internal/ticketsystem"
)

// DecisionHash names the decision a note explains: the ticket and, for
// every field the policy decided to suggest or apply, the field, the
// decision and the label(s). It leaves out the ticket version, the model and
// the confidences on purpose: a redelivery, a prediction from a later
// version of the ticket (the note itself changes updated_at) or a retrained
// model that reaches the same decision must not produce a second note.
func DecisionHash(pred *v1.Prediction) string {
	type item struct{ field, decision, labels string }
	var items []item
	for _, f := range pred.Fields {
		if f.Decision != v1.Decision_DECISION_SUGGEST && f.Decision != v1.Decision_DECISION_APPLY {
			continue
		}
		ls := labels(f)
		slices.Sort(ls)
		items = append(items, item{f.Field, f.Decision.String(), strings.Join(ls, "\x1f")})
	}
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.field+a.decision, b.field+b.decision) })
	h := sha256.New()
	fmt.Fprintf(h, "%s\x1e%s\x1e%d", pred.System, pred.Account, pred.TicketId)
	for _, it := range items {
		fmt.Fprintf(h, "\x1e%s\x1f%s\x1f%s", it.field, it.decision, it.labels)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Marker is the text every decision note carries, visible (helpdesks may
// strip HTML comments), so that a writer in doubt can find the note among
// the ticket's conversations.
func Marker(hash string) string { return "autotriage decision " + hash }

// hasMarker reports whether a conversation is the note of a decision.
func hasMarker(c ticketsystem.Conversation, hash string) bool {
	m := Marker(hash)
	return strings.Contains(c.BodyText, m) || strings.Contains(c.BodyHTML, m)
}

var fieldTitles = map[string]string{FieldGroup: "Group", FieldType: "Type", FieldPriority: "Priority", FieldTags: "Tags"}

// renderNote is the private note's HTML: per field, the prediction, its
// confidence, the mode (applied or suggested) and the runners-up; then the
// model version and the marker. Every model-provided string is escaped.
func renderNote(pred *v1.Prediction, plans []*fieldPlan, hash string) string {
	var b strings.Builder
	b.WriteString("<div><p><b>autotriage</b> triage of this ticket:</p><ul>")
	for _, p := range plans {
		if !p.noted {
			continue
		}
		title := fieldTitles[p.pred.Field]
		mode := "suggested"
		if p.out.Action == v1.Action_ACTION_APPLIED {
			mode = "applied"
		}
		fmt.Fprintf(&b, "<li><b>%s</b>: %s (confidence %s, %s)", html.EscapeString(title),
			html.EscapeString(strings.Join(p.names, ", ")), pct(p.pred.Confidence), mode)
		var runners []string
		for _, ls := range p.pred.TopK {
			if slices.Contains(labels(p.pred), ls.Label) {
				continue
			}
			runners = append(runners, html.EscapeString(ls.Label)+" "+pct(ls.Probability))
			if len(runners) == 3 {
				break
			}
		}
		if len(runners) > 0 {
			b.WriteString("; runners-up: " + strings.Join(runners, ", "))
		}
		b.WriteString("</li>")
	}
	b.WriteString("</ul>")
	fmt.Fprintf(&b, "<p>Model %s.", html.EscapeString(modelVersion(pred)))
	b.WriteString(" Applied fields carry the tag set by autotriage; change them freely, autotriage will not overwrite a person's choice.</p>")
	fmt.Fprintf(&b, "<p><small>%s</small></p></div>", Marker(hash))
	return b.String()
}

func modelVersion(pred *v1.Prediction) string {
	v := pred.ModelVersion
	if v == "" {
		v = pred.ModelId
	}
	if v == "" {
		v = "unknown"
	}
	return v
}

func pct(p float64) string { return strconv.FormatFloat(p*100, 'f', 0, 64) + "%" }

// errNoteInDoubt means a note may be on its way or may have been lost; the
// prediction is retried after the lease, when the conversations tell.
var errNoteInDoubt = errors.New("a note for this decision may already exist; waiting before checking again")

// noteResult says how ensureNote ended.
type noteResult struct {
	written bool // the note exists (now or from an earlier delivery)
	posted  bool // this call posted it
}

// ensureNote posts the decision note at most once. The KV record goes
// pending before the POST and written after it; a record found pending (a
// crash, or an answer that never came) is resolved by looking for the
// marker in the ticket's conversations, and the note is posted again only
// when it is absent and the pending record is older than the lease, so a
// writer still in the middle of posting is not raced.
func (s *Stage) ensureNote(ctx context.Context, pred *v1.Prediction, hash, body string) (noteResult, error) {
	sys, acct, id := pred.System, pred.Account, pred.TicketId
	// Most decisions have no record yet: create it pending at once (a
	// create fails if the record exists, so this is the same
	// compare-and-set as below, without the read before it).
	pending := ledger.NoteRecord{State: ledger.NotePending, At: s.now()}
	switch rev, err := s.ledger.PutNote(ctx, sys, acct, id, hash, pending); {
	case err == nil:
		pending.Revision = rev
		return s.postNote(ctx, pred, hash, body, pending)
	case !errors.Is(err, ledger.ErrConflict):
		return noteResult{}, fmt.Errorf("record pending note: %w", err)
	}
	for range 3 {
		rec, err := s.ledger.GetNote(ctx, sys, acct, id, hash)
		switch {
		case errors.Is(err, ledger.ErrNotFound):
			rec = ledger.NoteRecord{State: ledger.NotePending, At: s.now()}
			rev, err := s.ledger.PutNote(ctx, sys, acct, id, hash, rec)
			if errors.Is(err, ledger.ErrConflict) {
				continue // another writer created it first: look again
			}
			if err != nil {
				return noteResult{}, fmt.Errorf("record pending note: %w", err)
			}
			rec.Revision = rev
			return s.postNote(ctx, pred, hash, body, rec)
		case err != nil:
			return noteResult{}, fmt.Errorf("read note record: %w", err)
		case rec.State == ledger.NoteWritten:
			return noteResult{written: true}, nil
		}
		// Pending: a crash or an unknown outcome left doubt.
		found, convID, err := s.findNote(ctx, id, hash)
		if err != nil {
			return noteResult{}, err
		}
		if found {
			s.markWritten(ctx, pred, hash, rec, convID)
			return noteResult{written: true}, nil
		}
		if age := s.now().Sub(rec.At); age < s.cfg.NoteLease {
			return noteResult{}, pipeline.RetryAfter(errNoteInDoubt, s.cfg.NoteLease-age)
		}
		// The pending writer is gone and its note never arrived: take over.
		rec.At = s.now()
		rev, err := s.ledger.PutNote(ctx, sys, acct, id, hash, rec)
		if errors.Is(err, ledger.ErrConflict) {
			continue
		}
		if err != nil {
			return noteResult{}, fmt.Errorf("take over pending note: %w", err)
		}
		rec.Revision = rev
		return s.postNote(ctx, pred, hash, body, rec)
	}
	return noteResult{}, pipeline.RetryAfter(errors.New("note record kept changing"), time.Second)
}

func (s *Stage) postNote(ctx context.Context, pred *v1.Prediction, hash, body string, rec ledger.NoteRecord) (noteResult, error) {
	conv, err := s.tickets.AddNote(ctx, pred.TicketId, ticketsystem.Note{BodyHTML: body})
	switch {
	case err == nil:
		s.metrics.notes.WithLabelValues("written").Inc()
		var convID int64
		if conv != nil {
			convID = conv.ID
		}
		s.markWritten(ctx, pred, hash, rec, convID)
		return noteResult{written: true, posted: true}, nil
	case errors.Is(err, ticketsystem.ErrOutcomeUnknown):
		// The server may have stored it. Look now; if it is not there yet,
		// leave the record pending and come back after the lease.
		found, convID, ferr := s.findNote(ctx, pred.TicketId, hash)
		if ferr == nil && found {
			s.metrics.notes.WithLabelValues("written").Inc()
			s.markWritten(ctx, pred, hash, rec, convID)
			return noteResult{written: true, posted: true}, nil
		}
		s.metrics.notes.WithLabelValues("unknown").Inc()
		return noteResult{}, pipeline.RetryAfter(fmt.Errorf("add note: %w", err), s.cfg.NoteLease)
	default:
		// The note was certainly not stored (the client only returns other
		// errors for requests the server refused or never got): clear the
		// lease so the next delivery need not wait for it.
		s.metrics.notes.WithLabelValues("failed").Inc()
		rec.At = time.Time{}
		if _, perr := s.ledger.PutNote(ctx, pred.System, pred.Account, pred.TicketId, hash, rec); perr != nil {
			s.log.Warn("cannot clear the pending note record", "ticket", pred.TicketId, "err", perr)
		}
		return noteResult{}, fmt.Errorf("add note: %w", err)
	}
}

// markWritten records the note as written. A failure is only logged: the
// note exists, and a later delivery that finds the record pending will find
// the marker too.
func (s *Stage) markWritten(ctx context.Context, pred *v1.Prediction, hash string, rec ledger.NoteRecord, convID int64) {
	rec.State, rec.At, rec.ConversationID = ledger.NoteWritten, s.now(), convID
	if _, err := s.ledger.PutNote(ctx, pred.System, pred.Account, pred.TicketId, hash, rec); err != nil {
		s.log.Warn("note written but its record was not updated", "ticket", pred.TicketId, "hash", hash, "err", err)
	}
}

// findNote looks for the decision's marker among the ticket's notes.
func (s *Stage) findNote(ctx context.Context, id int64, hash string) (bool, int64, error) {
	convs, err := s.tickets.Conversations(ctx, id)
	if err != nil {
		return false, 0, fmt.Errorf("list conversations to check for an earlier note: %w", err)
	}
	for _, c := range convs {
		if hasMarker(c, hash) {
			return true, c.ID, nil
		}
	}
	return false, 0, nil
}
