package freshdesksim

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// handleAddNote is POST /tickets/{id}/notes: 201 with the conversation object
// and a Location header; private defaults to true; body is required. Adding a
// note bumps the ticket's updated_at, as any ticket activity does.
func (s *Sim) handleAddNote(w http.ResponseWriter, r *http.Request, rc *reqCtx, id int64) {
	if !checkParams(w, r.URL.Query()) {
		return
	}
	s.mu.RLock()
	exists := s.tickets[id] != nil
	s.mu.RUnlock()
	if !exists {
		writeJSON(w, http.StatusNotFound, nil)
		return
	}
	m, ok := decodeJSONObject(w, r)
	if !ok {
		return
	}
	c := Conversation{Private: true, Source: 2, UserID: rc.agentID, TicketID: id, NotifyTo: []string{}}
	errs := validateNote(m, &c)
	if _, ok := m["body"]; !ok {
		errs = append(errs, fieldError{"body", "It should be a/an String", "missing_field"})
	}
	if len(errs) > 0 {
		writeValidation(w, errs...)
		return
	}
	c2, err := s.addNote(c)
	if err != nil {
		writeJSON(w, http.StatusNotFound, nil)
		return
	}
	s.afterAPIWrite(id)
	w.Header().Set("Location", baseURL(r)+"/api/v2/conversations/"+strconv.FormatInt(c2.ID, 10))
	writeJSON(w, http.StatusCreated, appendConversation(nil, &c2))
}

// noteFieldValidator checks the value v of field k and applies it to c, or
// returns the error.
type noteFieldValidator func(c *Conversation, k string, v any) *fieldError

// noteFields are the keys POST /tickets/{id}/notes accepts, each with its
// validator.
var noteFields = map[string]noteFieldValidator{
	"body": func(c *Conversation, k string, v any) *fieldError {
		x, ok := v.(string)
		if !ok {
			return &fieldError{k, "Value set is of type " + jsonKind(v) + ".It should be a/an String", "datatype_mismatch"}
		}
		if strings.TrimSpace(x) == "" {
			return &fieldError{k, "It should not be blank as this is a mandatory field", "invalid_value"}
		}
		if !strings.HasPrefix(x, "<div") {
			x = "<div>" + x + "</div>"
		}
		c.Body, c.BodyText = x, htmlToText(x)
		return nil
	},
	"private":  boolNoteField(func(c *Conversation, x bool) { c.Private = x }),
	"incoming": boolNoteField(func(c *Conversation, x bool) { c.Incoming = x }),
	"notify_emails": func(c *Conversation, k string, v any) *fieldError {
		arr, ok := v.([]any)
		if !ok {
			return &fieldError{k, "Value set is of type " + jsonKind(v) + ".It should be a/an Array", "datatype_mismatch"}
		}
		for _, e := range arr {
			x, ok := e.(string)
			if !ok || !strings.Contains(x, "@") {
				return &fieldError{k, "It should contain elements that are in the 'valid email address' format", "invalid_value"}
			}
			c.NotifyTo = append(c.NotifyTo, x)
		}
		return nil
	},
	"user_id": func(c *Conversation, k string, v any) *fieldError {
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || i <= 0 {
			return &fieldError{k, msgPositiveInt, "invalid_value"}
		}
		c.UserID = i
		return nil
	},
}

func boolNoteField(set func(*Conversation, bool)) noteFieldValidator {
	return func(c *Conversation, k string, v any) *fieldError {
		x, ok := v.(bool)
		if !ok {
			return &fieldError{k, "Value set is of type " + jsonKind(v) + ".It should be a/an Boolean", "datatype_mismatch"}
		}
		set(c, x)
		return nil
	}
}

// validateNote applies m to c, returning the errors in key order.
func validateNote(m map[string]any, c *Conversation) []fieldError {
	var errs []fieldError
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		validate, ok := noteFields[k]
		if !ok {
			errs = append(errs, fieldError{k, msgInvalidField, "invalid_field"})
			continue
		}
		if e := validate(c, k, m[k]); e != nil {
			errs = append(errs, *e)
		}
	}
	return errs
}

func (s *Sim) addNote(c Conversation) (Conversation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tk := s.tickets[c.TicketID]
	if tk == nil {
		return Conversation{}, errNoTicket
	}
	s.people.before(c.TicketID, tk.t.GroupID)
	now := s.nowSec()
	s.nextNote++
	c.ID = s.nextNote
	c.CreatedAt, c.UpdatedAt = now, now
	s.notes[c.TicketID] = append(s.notes[c.TicketID], &c)
	t := tk.t.clone()
	t.UpdatedAt = s.bumpUpdated(t.UpdatedAt, now)
	s.store(t, now)
	return c, nil
}

func (s *Sim) handleConversations(w http.ResponseWriter, r *http.Request, _ *reqCtx, id int64) {
	q := r.URL.Query()
	if !checkParams(w, q, "page", "per_page") {
		return
	}
	page, perPage, ok := pageParams(w, q, 30, 0)
	if !ok {
		return
	}
	s.mu.RLock()
	if s.tickets[id] == nil {
		s.mu.RUnlock()
		writeJSON(w, http.StatusNotFound, nil)
		return
	}
	notes := s.notes[id]
	lo, hi, more := pageBounds(len(notes), page, perPage)
	b := []byte{'['}
	for i, c := range notes[lo:hi] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendConversation(b, c)
	}
	s.mu.RUnlock()
	setNextLink(w, r, more, page)
	writeJSON(w, http.StatusOK, append(b, ']'))
}

// Notes returns the conversations of a ticket, oldest first.
func (s *Sim) Notes(id int64) []Conversation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Conversation, 0, len(s.notes[id]))
	for _, c := range s.notes[id] {
		cc := *c
		cc.NotifyTo = slices.Clone(c.NotifyTo)
		out = append(out, cc)
	}
	return out
}
