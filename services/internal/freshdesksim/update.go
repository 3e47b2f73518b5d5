package freshdesksim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds every request body.
const maxBody = 1 << 20

// updatableFields are the keys PUT /tickets/{id} accepts (reference section 5).
// "attachments" needs multipart, which the simulator does not accept.
var updatableFields = []string{
	"name", "requester_id", "email", "phone", "facebook_id", "twitter_id", "unique_external_id",
	"subject", "type", "status", "priority", "description", "source", "tags", "custom_fields",
	"responder_id", "group_id", "product_id", "company_id", "email_config_id", "parent_id",
	"due_by", "fr_due_by", "internal_agent_id", "internal_group_id", "lookup_parameter",
}

// jsonKind names a decoded JSON value's type the way Freshdesk's messages do
// ("Value set is of type String.").
func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "Null"
	case string:
		return "String"
	case bool:
		return "Boolean"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "Integer"
		}
		return "Float"
	case []any:
		return "Array"
	default:
		return "key/value pair"
	}
}

// decodeJSONObject reads a bounded JSON object body. It writes the error
// response itself and returns ok=false on failure.
func decodeJSONObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		// Unverified: the 415 body; this is the reference's best guess.
		writeCodeMessage(w, http.StatusUnsupportedMediaType, "invalid_content_type", "Content-Type header should have application/json")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeCodeMessage(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("Request body is larger than %d bytes", maxBody))
			return nil, false
		}
		writeCodeMessage(w, http.StatusBadRequest, "invalid_json", "Request body has invalid json format")
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		// Unverified: the invalid_json message text.
		writeCodeMessage(w, http.StatusBadRequest, "invalid_json", "Request body has invalid json format")
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeCodeMessage(w, http.StatusBadRequest, "invalid_json", "Request body has invalid json format")
		return nil, false
	}
	return m, true
}

// ticketChange is a validated set of changes.
type ticketChange struct {
	t              Ticket // the ticket with the changes applied
	requesterEmail string
	requesterName  string
}

func choicesMsg(kind string, choices string, typeMismatch bool) (string, string) {
	msg := "It should be one of these values: '" + choices + "'"
	if typeMismatch {
		return "Value set is of type " + kind + "." + msg, "datatype_mismatch"
	}
	return msg, "invalid_value"
}

// validateChanges checks m against Freshdesk's rules and applies it to a copy
// of cur. Errors are sorted by field name so responses are deterministic.
// Must be called with s.mu held (read or write).
func (s *Sim) validateChanges(m map[string]any, cur Ticket) (ticketChange, []fieldError) {
	ch := ticketChange{t: cur.clone()}
	t := &ch.t
	var errs []fieldError
	add := func(field, msg, code string) { errs = append(errs, fieldError{field, msg, code}) }

	posInt := func(k string, v any, nullable bool) (int64, bool) {
		if v == nil && nullable {
			return 0, true
		}
		n, ok := v.(json.Number)
		if ok {
			if i, err := n.Int64(); err == nil && i > 0 {
				return i, true
			}
		}
		add(k, msgPositiveInt, "invalid_value")
		return 0, false
	}
	str := func(k string, v any, maxLen int) (string, bool) {
		x, ok := v.(string)
		if !ok {
			add(k, "Value set is of type "+jsonKind(v)+".It should be a/an String", "datatype_mismatch")
			return "", false
		}
		if maxLen > 0 && len(x) > maxLen {
			add(k, "Has "+strconv.Itoa(len(x))+" characters, it can have maximum of "+strconv.Itoa(maxLen)+" characters", "invalid_value")
			return "", false
		}
		return x, true
	}
	choice := func(k string, v any, valid func(int) bool, list string) (int, bool) {
		n, isNum := v.(json.Number)
		if !isNum {
			msg, code := choicesMsg(jsonKind(v), list, true)
			add(k, msg, code)
			return 0, false
		}
		i, err := n.Int64()
		if err != nil || !valid(int(i)) {
			msg, code := choicesMsg("", list, false)
			add(k, msg, code)
			return 0, false
		}
		return int(i), true
	}
	date := func(k string, v any) (time.Time, bool) {
		x, ok := v.(string)
		if ok {
			if tt, ok := parseSince(x); ok {
				return tt.Truncate(time.Second), true
			}
		}
		add(k, "It should be in the 'valid date time' format", "invalid_value")
		return time.Time{}, false
	}

	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		if !slices.Contains(updatableFields, k) {
			add(k, msgInvalidField, "invalid_field")
			continue
		}
		switch k {
		case "status":
			if st, ok := choice(k, v, validStatus, statusList()); ok {
				t.Status = st
			}
		case "priority":
			if p, ok := choice(k, v, func(i int) bool { return i >= 1 && i <= 4 }, "1,2,3,4"); ok {
				t.Priority = p
			}
		case "source":
			list := make([]string, len(sourceChoices))
			for i, c := range sourceChoices {
				list[i] = strconv.Itoa(c.id)
			}
			if src, ok := choice(k, v, validSource, strings.Join(list, ",")); ok {
				t.Source = src
			}
		case "type":
			if v == nil {
				t.Type = ""
				continue
			}
			x, isStr := v.(string)
			if !isStr || !slices.Contains(s.fields.types, x) {
				msg, code := choicesMsg(jsonKind(v), strings.Join(s.fields.types, ","), !isStr)
				add(k, msg, code)
				continue
			}
			t.Type = x
		case "subject":
			if x, ok := str(k, v, 255); ok {
				if x == "" {
					add(k, "It should not be blank as this is a mandatory field", "invalid_value")
					continue
				}
				t.Subject = x
			}
		case "description":
			if x, ok := str(k, v, 0); ok {
				t.Description = x
				t.DescriptionText = htmlToText(x)
			}
		case "tags":
			arr, ok := v.([]any)
			if !ok {
				add(k, "Value set is of type "+jsonKind(v)+".It should be a/an Array", "datatype_mismatch")
				continue
			}
			tags := make([]string, 0, len(arr))
			bad := false
			for _, e := range arr {
				x, ok := e.(string)
				if !ok {
					add(k, "It should contain elements of type String only", "datatype_mismatch")
					bad = true
					break
				}
				if len(x) > 255 {
					add(k, "Each tag should have a maximum of 255 characters", "invalid_value")
					bad = true
					break
				}
				if !slices.Contains(tags, x) {
					tags = append(tags, x)
				}
			}
			if !bad {
				t.Tags = tags // tags replace the ticket's set
			}
		case "group_id":
			if id, ok := posInt(k, v, true); ok {
				if id != 0 && s.groupByID(id) == nil {
					add(k, "There is no group matching the given group_id", "invalid_value")
					continue
				}
				t.GroupID = id
			}
		case "responder_id":
			if id, ok := posInt(k, v, true); ok {
				if id != 0 && s.agentByID(id) == nil {
					add(k, "There is no agent matching the given responder_id", "invalid_value")
					continue
				}
				t.ResponderID = id
			}
		case "internal_group_id", "internal_agent_id", "product_id", "company_id", "parent_id":
			if id, ok := posInt(k, v, true); ok {
				switch k {
				case "internal_group_id":
					t.InternalGroupID = id
				case "internal_agent_id":
					t.InternalAgentID = id
				case "product_id":
					t.ProductID = id
				case "company_id":
					t.CompanyID = id
				case "parent_id":
					t.ParentID = id
				}
			}
		case "requester_id":
			if id, ok := posInt(k, v, false); ok {
				if s.contacts[id] == nil {
					add(k, "There is no contact matching the given requester_id", "invalid_value")
					continue
				}
				t.RequesterID = id
			}
		case "email_config_id":
			if id, ok := posInt(k, v, false); ok {
				t.EmailConfigID = id
			}
		case "due_by":
			if d, ok := date(k, v); ok {
				t.DueBy = d
			}
		case "fr_due_by":
			if d, ok := date(k, v); ok {
				t.FrDueBy = d
			}
		case "email":
			if x, ok := str(k, v, 255); ok {
				if !strings.Contains(x, "@") || strings.ContainsAny(x, " \t\n") {
					add(k, "It should be in the 'valid email address' format", "invalid_value")
					continue
				}
				ch.requesterEmail = strings.ToLower(x)
			}
		case "name":
			if x, ok := str(k, v, 255); ok {
				ch.requesterName = x
			}
		case "phone", "facebook_id", "twitter_id", "unique_external_id", "lookup_parameter":
			str(k, v, 255) // accepted and not stored: simulated contacts have no such data
		case "custom_fields":
			obj, ok := v.(map[string]any)
			if !ok {
				add(k, "Value set is of type "+jsonKind(v)+".It should be a/an key/value pair", "datatype_mismatch")
				continue
			}
			errs = append(errs, s.validateCustom(obj, t)...)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return ch, errs
}

func (s *Sim) validateCustom(obj map[string]any, t *Ticket) []fieldError {
	var errs []fieldError
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := obj[name]
		cf, ok := s.fields.customByName(name)
		if !ok {
			errs = append(errs, fieldError{name, msgInvalidField, "invalid_field"})
			continue
		}
		if v == nil {
			t.CustomFields[name] = nil
			continue
		}
		mismatch := func(want string) {
			errs = append(errs, fieldError{name, "Value set is of type " + jsonKind(v) + ".It should be a/an " + want, "datatype_mismatch"})
		}
		switch cf.typ {
		case "custom_dropdown":
			x, isStr := v.(string)
			if !isStr || !slices.Contains(cf.choices, x) {
				msg, code := choicesMsg(jsonKind(v), strings.Join(cf.choices, ","), !isStr)
				errs = append(errs, fieldError{name, msg, code})
				continue
			}
			t.CustomFields[name] = x
		case "custom_text":
			x, ok := v.(string)
			if !ok {
				mismatch("String")
				continue
			}
			if len(x) > 255 {
				errs = append(errs, fieldError{name, "Has " + strconv.Itoa(len(x)) + " characters, it can have maximum of 255 characters", "invalid_value"})
				continue
			}
			t.CustomFields[name] = x
		case "custom_number":
			n, ok := v.(json.Number)
			i, err := n.Int64()
			if !ok || err != nil {
				mismatch("Integer")
				continue
			}
			t.CustomFields[name] = i
		case "custom_checkbox":
			x, ok := v.(bool)
			if !ok {
				mismatch("Boolean")
				continue
			}
			t.CustomFields[name] = x
		case "custom_date":
			x, ok := v.(string)
			if _, err := time.Parse("2006-01-02", x); !ok || err != nil {
				errs = append(errs, fieldError{name, "It should be in the 'yyyy-mm-dd' format", "invalid_value"})
				continue
			}
			t.CustomFields[name] = x
		}
	}
	return errs
}

// applyStatusTimes keeps the stats timestamps consistent with a status change.
func applyStatusTimes(t *Ticket, prevStatus int, now time.Time) {
	if t.Status == prevStatus {
		return
	}
	t.StatusUpdatedAt = now
	switch t.Status {
	case 4:
		t.ResolvedAt = now
	case 5:
		t.ClosedAt = now
		if t.ResolvedAt.IsZero() {
			t.ResolvedAt = now
		}
	}
}

// ensureContact returns the id of the contact with email, creating it.
// Must be called with s.mu held for writing.
func (s *Sim) ensureContact(email, name, companyName string) int64 {
	email = strings.ToLower(email)
	if id, ok := s.byEmail[email]; ok {
		return id
	}
	s.nextID++
	c := &contact{id: 69000000000 + s.nextID, email: email, name: name}
	if c.name == "" {
		c.name, _, _ = strings.Cut(email, "@")
	}
	if companyName != "" {
		cid, ok := s.companyByNm[companyName]
		if !ok {
			s.nextID++
			cid = 47000000000 + s.nextID
			s.companies[cid] = &company{id: cid, name: companyName}
			s.companyByNm[companyName] = cid
		}
		c.company = cid
	}
	s.contacts[c.id] = c
	s.byEmail[email] = c.id
	return c.id
}

func (s *Sim) handleUpdate(w http.ResponseWriter, r *http.Request, _ *reqCtx, id int64) {
	if !checkParams(w, r.URL.Query()) {
		return
	}
	s.mu.RLock()
	tk := s.tickets[id]
	var spamOrDeleted bool
	if tk != nil {
		spamOrDeleted = tk.t.Spam || tk.t.Deleted
	}
	s.mu.RUnlock()
	if tk == nil {
		writeJSON(w, http.StatusNotFound, nil)
		return
	}
	if spamOrDeleted {
		// Unverified: the 405 body; Freshdesk documents only the status.
		w.Header().Set("Allow", "GET")
		writeCodeMessage(w, http.StatusMethodNotAllowed, "method_not_allowed", "Update is not allowed on a spam or deleted ticket.")
		return
	}
	m, ok := decodeJSONObject(w, r)
	if !ok {
		return
	}
	body, errs, err := s.updateTicket(id, m, false)
	switch {
	case err != nil:
		writeJSON(w, http.StatusNotFound, nil)
	case len(errs) > 0:
		writeValidation(w, errs...)
	default:
		writeJSON(w, http.StatusOK, body)
	}
}

var errNoTicket = errors.New("freshdesksim: no such ticket")

// updateTicket validates and applies m to ticket id. agent marks a human edit
// made through AgentUpdate (which may fire a webhook). It returns the view
// rendering of the updated ticket.
func (s *Sim) updateTicket(id int64, m map[string]any, agent bool) ([]byte, []fieldError, error) {
	s.mu.Lock()
	tk := s.tickets[id]
	if tk == nil {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("update ticket %d: %w", id, errNoTicket)
	}
	prev := tk.t
	if !agent {
		s.people.before(id, prev.GroupID)
	}
	ch, errs := s.validateChanges(m, prev)
	if len(errs) > 0 {
		s.mu.Unlock()
		return nil, errs, nil
	}
	if len(m) == 0 {
		s.mu.Unlock()
		return tk.view, nil, nil // nothing to change: updated_at stays
	}
	now := s.nowSec()
	if ch.requesterEmail != "" {
		ch.t.RequesterID = s.ensureContact(ch.requesterEmail, ch.requesterName, "")
	}
	applyStatusTimes(&ch.t, prev.Status, now)
	if agent && prev.FirstRespondedAt.IsZero() {
		ch.t.FirstRespondedAt = now
	}
	ch.t.UpdatedAt = s.bumpUpdated(prev.UpdatedAt, now)
	nt := s.store(ch.t, now)
	view := nt.view
	var ev *webhookEvent
	if s.hooks != nil && (agent || s.cfg.Webhook.OnAPIUpdates) {
		ev = s.updateEvent(prev, nt.t)
	}
	s.mu.Unlock()
	if ev != nil {
		s.hooks.enqueue(*ev)
	}
	if !agent {
		s.afterAPIWrite(id)
	}
	return view, nil, nil
}

// handleCreate is POST /api/v2/tickets: the fields of update plus a requester
// (email or requester_id). Status defaults to 2 (Open), priority to 1 (Low),
// source to 2 (Portal).
func (s *Sim) handleCreate(w http.ResponseWriter, r *http.Request, _ *reqCtx, _ int64) {
	if !checkParams(w, r.URL.Query()) {
		return
	}
	m, ok := decodeJSONObject(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	now := s.nowSec()
	base := Ticket{Status: 2, Priority: 1, Source: 2, CustomFields: map[string]any{}}
	ch, errs := s.validateChanges(m, base)
	if _, hasEmail := m["email"]; !hasEmail && m["requester_id"] == nil {
		errs = append(errs, fieldError{"requester_id", "Please fill at least 1 of requester_id, email, phone, facebook_id, twitter_id, unique_external_id attributes", "missing_field"})
	}
	if _, ok := m["subject"]; !ok {
		errs = append(errs, fieldError{"subject", "It should be a/an String", "missing_field"})
	}
	if len(errs) > 0 {
		s.mu.Unlock()
		writeValidation(w, errs...)
		return
	}
	if ch.requesterEmail != "" {
		ch.t.RequesterID = s.ensureContact(ch.requesterEmail, ch.requesterName, "")
	}
	t := ch.t
	t.ID = s.nextTicket
	s.nextTicket++
	t.CreatedAt, t.UpdatedAt = now, now
	if t.DueBy.IsZero() {
		t.DueBy = now.Add(72 * time.Hour)
	}
	if t.FrDueBy.IsZero() {
		t.FrDueBy = now.Add(24 * time.Hour)
	}
	nt := s.store(t, now)
	view := nt.view
	var ev *webhookEvent
	if s.hooks != nil {
		e := s.createdEvent(nt.t)
		ev = &e
	}
	s.mu.Unlock()
	if ev != nil {
		s.hooks.enqueue(*ev)
	}
	w.Header().Set("Location", baseURL(r)+"/api/v2/tickets/"+strconv.FormatInt(t.ID, 10))
	writeJSON(w, http.StatusCreated, view)
}
