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
	"unicode/utf8"

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
// confidence, the mode (applied or suggested), the runners-up and the words
// of the ticket that weighed most for it; then the most similar resolved
// tickets of the model's history, linked through ticketURL ({id} replaced;
// "" gives no links); then the model version and the marker. Every
// model-provided string is escaped and clipped, and the lists are capped,
// so the note stays small whatever the prediction holds.
func renderNote(pred *v1.Prediction, plans []*fieldPlan, hash, ticketURL string) string {
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
		var terms []string
		for _, t := range p.pred.Terms {
			terms = append(terms, "<i>"+html.EscapeString(clip(t.Text, noteTermRunes))+"</i> "+
				strconv.FormatFloat(t.Weight, 'f', 2, 64))
			if len(terms) == noteTerms {
				break
			}
		}
		if len(terms) > 0 {
			b.WriteString("; because of: " + strings.Join(terms, ", "))
		}
		b.WriteString("</li>")
	}
	b.WriteString("</ul>")
	renderSimilar(&b, pred.Similar, ticketURL)
	fmt.Fprintf(&b, "<p>Model %s.", html.EscapeString(modelVersion(pred)))
	b.WriteString(" Applied fields carry the tag set by autotriage; change them freely, autotriage will not overwrite a person's choice.</p>")
	fmt.Fprintf(&b, "<p><small>%s</small></p></div>", Marker(hash))
	return b.String()
}

// Bounds of the explanation in a note.
const (
	noteTerms        = 5
	noteTermRunes    = 40
	noteSimilar      = 3
	noteSubjectRunes = 120
	noteLabelRunes   = 60
)

// renderSimilar lists the similar resolved tickets: link (or the training
// example's id when it names no ticket), subject, the labels it ended with
// and the similarity.
func renderSimilar(b *strings.Builder, similar []*v1.SimilarTicket, ticketURL string) {
	if len(similar) == 0 {
		return
	}
	b.WriteString("<p>Similar resolved tickets:</p><ul>")
	for i, st := range similar {
		if i == noteSimilar {
			break
		}
		b.WriteString("<li>")
		switch {
		case st.TicketId > 0 && ticketURL != "":
			u := strings.ReplaceAll(ticketURL, "{id}", strconv.FormatInt(st.TicketId, 10))
			fmt.Fprintf(b, `<a href="%s">#%d</a>`, html.EscapeString(u), st.TicketId)
		case st.TicketId > 0:
			fmt.Fprintf(b, "#%d", st.TicketId)
		default:
			b.WriteString(html.EscapeString(clip(st.ExampleId, noteLabelRunes)))
		}
		if st.Subject != "" {
			b.WriteString(" " + html.EscapeString(clip(st.Subject, noteSubjectRunes)))
		}
		var ls []string
		for _, f := range []string{FieldGroup, FieldType, FieldPriority, FieldTags} {
			if v := st.Labels[f]; v != "" {
				ls = append(ls, html.EscapeString(fieldTitles[f]+" "+clip(v, noteLabelRunes)))
			}
		}
		if len(ls) > 0 {
			b.WriteString(" (" + strings.Join(ls, ", ") + ")")
		}
		fmt.Fprintf(b, ", similarity %s</li>", pct(st.Similarity))
	}
	b.WriteString("</ul>")
}

// clip cuts s to at most n runes, marking the cut with an ellipsis.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// NoteFor is the note the writer posts for pred when every field it
// suggests or applies keeps its predicted label (no label map) and is
// written as decided: the real text and size of a decision note, for
// benchmarks and previews.
func NoteFor(pred *v1.Prediction) string {
	plans := initialPlans(pred)
	for _, p := range plans {
		if !p.pending {
			continue
		}
		p.names, p.noted = labels(p.pred), true
		if p.pred.Decision == v1.Decision_DECISION_APPLY {
			p.finish(v1.Action_ACTION_APPLIED, ReasonApplied)
		} else {
			p.finish(v1.Action_ACTION_SUGGESTED, ReasonSuggested)
		}
	}
	return renderNote(pred, plans, DecisionHash(pred), "")
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

// errNoteRaced means another writer changed the state of this decision's
// note between this delivery's read of the record and its compare-and-set:
// it is posting the note, or has. The next delivery finds its state.
var errNoteRaced = errors.New("another writer changed the state of this decision's note")

// notePlan is what a delivery does about its decision note. The note's
// state lives in the ticket's record (ledger.Applied.Notes) and changes
// only through the record's compare-and-sets: the one that records the
// intent (before the note and the PUT) and the one that records the write.
type notePlan struct {
	hash string
	// read is the decision's state in the record as apply read it (nil:
	// none). A claim is stored only while the record still holds it.
	read *ledger.Note
	// set is the state the intent's compare-and-set stores (nil: none):
	// pending to claim the note before posting it, written to record a
	// note that turned out to exist.
	set     *ledger.Note
	post    bool  // post the note once the claim is stored
	written bool  // the note exists already
	convID  int64 // its id, when written and known
}

// planNote decides whether this delivery posts the decision note, so that
// it is written at most once per decision. With no state recorded it claims
// the note (pending). A pending state (a crash, or an answer that never
// came) is resolved by looking for the marker in the ticket's
// conversations; the note is claimed again only when it is absent and the
// pending state is older than the lease, so a writer still in the middle of
// posting is not raced.
//
// Writers before ledger.Applied.Notes kept the state under a key of its own
// (ledger.NoteKey). Such a key can only matter when the record existed
// before this delivery (those writers stored the record after every note
// they posted, and before it whenever they also wrote fields) or when an
// earlier delivery of this prediction ran (a crash before its record); only
// then is it read, so a ticket's first prediction costs no extra round
// trip. Left uncovered: an older writer dies between the note and the
// record of a note-only decision, and the same decision, made from another
// ticket version, arrives before that prediction's redelivery.
func (s *Stage) planNote(ctx context.Context, a *attempt, rec *ledger.Applied, hash string) (notePlan, error) {
	pred := a.pred
	np := notePlan{hash: hash}
	var st ledger.Note
	known, legacy := false, false
	if rec != nil {
		if n, ok := rec.Note(hash); ok {
			np.read, st, known = &n, n, true
		}
	}
	if !known && (rec != nil || a.delivery > 1) {
		switch r, err := s.ledger.GetNote(ctx, pred.System, pred.Account, pred.TicketId, hash); {
		case err == nil:
			st = ledger.Note{Decision: hash, State: r.State, At: r.At, ConversationID: r.ConversationID}
			known, legacy = true, true
		case !errors.Is(err, ledger.ErrNotFound):
			return np, fmt.Errorf("read note record: %w", err)
		}
	}
	now := s.now().UTC()
	claim := &ledger.Note{Decision: hash, State: ledger.NotePending, At: now}
	switch {
	case !known:
		np.set, np.post = claim, true
		return np, nil
	case st.State == ledger.NoteWritten:
		np.written, np.convID = true, st.ConversationID
		if legacy {
			np.set = &st // into the record: the old key need not be read again
		}
		return np, nil
	}
	// Pending: a crash or an unknown outcome left doubt.
	found, convID, err := s.findNote(ctx, pred.TicketId, hash)
	if err != nil {
		return np, err
	}
	if found {
		np.written, np.convID = true, convID
		np.set = &ledger.Note{Decision: hash, State: ledger.NoteWritten, At: now, ConversationID: convID}
		return np, nil
	}
	if age := now.Sub(st.At); age < s.cfg.NoteLease {
		return np, pipeline.RetryAfter(errNoteInDoubt, s.cfg.NoteLease-age)
	}
	// The pending writer is gone and its note never arrived: take over.
	np.set, np.post = claim, true
	return np, nil
}

// store puts the planned state into r, the ticket's record. A claim fails
// with errNoteRaced unless r still holds the state planNote read; a note
// found written is recorded whatever r holds.
func (np *notePlan) store(r *ledger.Applied) error {
	if np.set == nil {
		return nil
	}
	if np.set.State == ledger.NotePending {
		cur, ok := r.Note(np.hash)
		if ok != (np.read != nil) || (ok && (cur.State != np.read.State || !cur.At.Equal(np.read.At))) {
			return errNoteRaced
		}
	}
	r.SetNote(*np.set)
	return nil
}

// noteResult says how the note of a delivery ended.
type noteResult struct {
	written bool  // the note exists (now or from an earlier delivery)
	posted  bool  // this delivery posted it
	convID  int64 // its id in the ticket system, when known
	refused bool  // the ticket system certainly did not store it
}

// writtenState is the record's state of a note this delivery posted.
func (s *Stage) writtenState(hash string, n noteResult) *ledger.Note {
	if !n.posted {
		return nil
	}
	return &ledger.Note{Decision: hash, State: ledger.NoteWritten, At: s.now().UTC(), ConversationID: n.convID}
}

// postNote posts the claimed note. Its state stays pending in the record
// until the delivery records its write (or a later one finds the marker).
func (s *Stage) postNote(ctx context.Context, pred *v1.Prediction, hash, body string) (noteResult, error) {
	conv, err := s.tickets.AddNote(ctx, pred.TicketId, ticketsystem.Note{BodyHTML: body})
	switch {
	case err == nil:
		s.metrics.notes.WithLabelValues("written").Inc()
		n := noteResult{written: true, posted: true}
		if conv != nil {
			n.convID = conv.ID
		}
		return n, nil
	case errors.Is(err, ticketsystem.ErrOutcomeUnknown):
		// The server may have stored it. Look now; if it is not there yet,
		// leave the claim pending and come back after the lease.
		found, convID, ferr := s.findNote(ctx, pred.TicketId, hash)
		if ferr == nil && found {
			s.metrics.notes.WithLabelValues("written").Inc()
			return noteResult{written: true, posted: true, convID: convID}, nil
		}
		s.metrics.notes.WithLabelValues("unknown").Inc()
		return noteResult{}, pipeline.RetryAfter(fmt.Errorf("add note: %w", err), s.cfg.NoteLease)
	default:
		// The client only returns other errors for requests the server
		// refused or never got: the note was certainly not stored.
		s.metrics.notes.WithLabelValues("failed").Inc()
		return noteResult{refused: true}, fmt.Errorf("add note: %w", err)
	}
}

// releaseNote clears the lease of a claim whose note was certainly not
// stored, so the next delivery need not wait for it (it still looks for the
// marker first). It returns the record as stored. A failure is only logged:
// the next delivery then waits for the lease.
func (s *Stage) releaseNote(ctx context.Context, a *attempt, rec *ledger.Applied, np notePlan) *ledger.Applied {
	claim := *np.set
	next, err := s.updateRecord(ctx, a.pred, rec, func(r *ledger.Applied, _ bool) error {
		cur, ok := r.Note(claim.Decision)
		if !ok || cur.State != ledger.NotePending || !cur.At.Equal(claim.At) {
			return errNoteRaced // no longer this delivery's claim: leave it
		}
		released := claim
		released.At = time.Time{}
		r.SetNote(released)
		return nil
	})
	if err != nil {
		if !errors.Is(err, errNoteRaced) {
			s.log.Warn("cannot clear the pending note's lease", "ticket", a.pred.TicketId, "err", err)
		}
		return rec
	}
	return next
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
