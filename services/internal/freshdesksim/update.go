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
	c := &changeSet{s: s, ch: ticketChange{t: cur.clone()}}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		validate, ok := ticketFields[k]
		if !ok {
			c.add(k, msgInvalidField, "invalid_field")
			continue
		}
		validate(c, k, m[k])
	}
	sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Field < c.errs[j].Field })
	return c.ch, c.errs
}

// changeSet is the state of one validateChanges: the changed ticket and the
// errors found so far.
type changeSet struct {
	s    *Sim
	ch   ticketChange
	errs []fieldError
}

// fieldValidator checks the value v of field k and applies it to c.ch.t, or
// adds an error to c.
type fieldValidator func(c *changeSet, k string, v any)

// ticketFields are the keys PUT /tickets/{id} (and POST /tickets) accept
// (reference section 5), each with its validator. "attachments" needs
// multipart, which the simulator does not accept.
var ticketFields = map[string]fieldValidator{
	"name": func(c *changeSet, k string, v any) {
		if x, ok := c.str(k, v, 255); ok {
			c.ch.requesterName = x
		}
	},
	"requester_id":       validateRequester,
	"email":              validateEmail,
	"phone":              acceptString,
	"facebook_id":        acceptString,
	"twitter_id":         acceptString,
	"unique_external_id": acceptString,
	"lookup_parameter":   acceptString,
	"subject":            validateSubject,
	"type":               validateType,
	"status":             choiceField(validStatus, statusList, func(t *Ticket, v int) { t.Status = v }),
	"priority": choiceField(func(i int) bool { return i >= 1 && i <= 4 }, func() string { return "1,2,3,4" },
		func(t *Ticket, v int) { t.Priority = v }),
	"source": choiceField(validSource, sourceList, func(t *Ticket, v int) { t.Source = v }),
	"description": func(c *changeSet, k string, v any) {
		if x, ok := c.str(k, v, 0); ok {
			c.ch.t.Description, c.ch.t.DescriptionText = x, htmlToText(x)
		}
	},
	"tags":          validateTags,
	"custom_fields": validateCustomFields,
	"group_id": refField("There is no group matching the given group_id",
		func(s *Sim, id int64) bool { return s.groupByID(id) != nil }, func(t *Ticket, id int64) { t.GroupID = id }),
	"responder_id": refField("There is no agent matching the given responder_id",
		func(s *Sim, id int64) bool { return s.agentByID(id) != nil }, func(t *Ticket, id int64) { t.ResponderID = id }),
	"internal_group_id": idField(func(t *Ticket, id int64) { t.InternalGroupID = id }),
	"internal_agent_id": idField(func(t *Ticket, id int64) { t.InternalAgentID = id }),
	"product_id":        idField(func(t *Ticket, id int64) { t.ProductID = id }),
	"company_id":        idField(func(t *Ticket, id int64) { t.CompanyID = id }),
	"parent_id":         idField(func(t *Ticket, id int64) { t.ParentID = id }),
	"email_config_id": func(c *changeSet, k string, v any) {
		if id, ok := c.posInt(k, v, false); ok {
			c.ch.t.EmailConfigID = id
		}
	},
	"due_by":    dateField(func(t *Ticket, d time.Time) { t.DueBy = d }),
	"fr_due_by": dateField(func(t *Ticket, d time.Time) { t.FrDueBy = d }),
}

func (c *changeSet) add(field, msg, code string) {
	c.errs = append(c.errs, fieldError{field, msg, code})
}

func (c *changeSet) posInt(k string, v any, nullable bool) (int64, bool) {
	if v == nil && nullable {
		return 0, true
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil && i > 0 {
			return i, true
		}
	}
	c.add(k, msgPositiveInt, "invalid_value")
	return 0, false
}

func (c *changeSet) str(k string, v any, maxLen int) (string, bool) {
	x, ok := v.(string)
	if !ok {
		c.add(k, "Value set is of type "+jsonKind(v)+".It should be a/an String", "datatype_mismatch")
		return "", false
	}
	if maxLen > 0 && len(x) > maxLen {
		c.add(k, "Has "+strconv.Itoa(len(x))+" characters, it can have maximum of "+strconv.Itoa(maxLen)+" characters", "invalid_value")
		return "", false
	}
	return x, true
}

// acceptString checks a contact attribute, which is accepted and not
// stored: simulated contacts have no such data.
func acceptString(c *changeSet, k string, v any) { c.str(k, v, 255) }

// choiceField is a numeric choice (status, priority, source); list renders
// the choices for the error message.
func choiceField(valid func(int) bool, list func() string, set func(*Ticket, int)) fieldValidator {
	return func(c *changeSet, k string, v any) {
		n, isNum := v.(json.Number)
		if !isNum {
			msg, code := choicesMsg(jsonKind(v), list(), true)
			c.add(k, msg, code)
			return
		}
		i, err := n.Int64()
		if err != nil || !valid(int(i)) {
			msg, code := choicesMsg("", list(), false)
			c.add(k, msg, code)
			return
		}
		set(&c.ch.t, int(i))
	}
}

func sourceList() string {
	list := make([]string, len(sourceChoices))
	for i, c := range sourceChoices {
		list[i] = strconv.Itoa(c.id)
	}
	return strings.Join(list, ",")
}

// idField is an optional (nullable) id the simulator does not check.
func idField(set func(*Ticket, int64)) fieldValidator {
	return func(c *changeSet, k string, v any) {
		if id, ok := c.posInt(k, v, true); ok {
			set(&c.ch.t, id)
		}
	}
}

// refField is an optional (nullable) id that must name an existing record.
func refField(missing string, exists func(*Sim, int64) bool, set func(*Ticket, int64)) fieldValidator {
	return func(c *changeSet, k string, v any) {
		id, ok := c.posInt(k, v, true)
		if !ok {
			return
		}
		if id != 0 && !exists(c.s, id) {
			c.add(k, missing, "invalid_value")
			return
		}
		set(&c.ch.t, id)
	}
}

func dateField(set func(*Ticket, time.Time)) fieldValidator {
	return func(c *changeSet, k string, v any) {
		if x, ok := v.(string); ok {
			if tt, ok := parseSince(x); ok {
				set(&c.ch.t, tt.Truncate(time.Second))
				return
			}
		}
		c.add(k, "It should be in the 'valid date time' format", "invalid_value")
	}
}

func validateRequester(c *changeSet, k string, v any) {
	id, ok := c.posInt(k, v, false)
	if !ok {
		return
	}
	if c.s.contacts[id] == nil {
		c.add(k, "There is no contact matching the given requester_id", "invalid_value")
		return
	}
	c.ch.t.RequesterID = id
}

func validateEmail(c *changeSet, k string, v any) {
	x, ok := c.str(k, v, 255)
	if !ok {
		return
	}
	if !strings.Contains(x, "@") || strings.ContainsAny(x, " \t\n") {
		c.add(k, "It should be in the 'valid email address' format", "invalid_value")
		return
	}
	c.ch.requesterEmail = strings.ToLower(x)
}

func validateSubject(c *changeSet, k string, v any) {
	x, ok := c.str(k, v, 255)
	if !ok {
		return
	}
	if x == "" {
		c.add(k, "It should not be blank as this is a mandatory field", "invalid_value")
		return
	}
	c.ch.t.Subject = x
}

// validateType accepts one of the account's ticket types, or null.
func validateType(c *changeSet, k string, v any) {
	if v == nil {
		c.ch.t.Type = ""
		return
	}
	types := c.s.fields.types
	x, isStr := v.(string)
	if !isStr || !slices.Contains(types, x) {
		msg, code := choicesMsg(jsonKind(v), strings.Join(types, ","), !isStr)
		c.add(k, msg, code)
		return
	}
	c.ch.t.Type = x
}

// validateTags replaces the ticket's tags with the (deduplicated) array.
func validateTags(c *changeSet, k string, v any) {
	arr, ok := v.([]any)
	if !ok {
		c.add(k, "Value set is of type "+jsonKind(v)+".It should be a/an Array", "datatype_mismatch")
		return
	}
	tags := make([]string, 0, len(arr))
	for _, e := range arr {
		x, ok := e.(string)
		if !ok {
			c.add(k, "It should contain elements of type String only", "datatype_mismatch")
			return
		}
		if len(x) > 255 {
			c.add(k, "Each tag should have a maximum of 255 characters", "invalid_value")
			return
		}
		if !slices.Contains(tags, x) {
			tags = append(tags, x)
		}
	}
	c.ch.t.Tags = tags
}

func validateCustomFields(c *changeSet, k string, v any) {
	obj, ok := v.(map[string]any)
	if !ok {
		c.add(k, "Value set is of type "+jsonKind(v)+".It should be a/an key/value pair", "datatype_mismatch")
		return
	}
	c.errs = append(c.errs, c.s.validateCustom(obj, &c.ch.t)...)
}

// validateCustom checks the custom_fields object and applies it to t. Null
// clears a field.
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
		x, e := customTypes[cf.typ](cf, v)
		if e != nil {
			errs = append(errs, *e)
			continue
		}
		t.CustomFields[name] = x
	}
	return errs
}

// customTypes validate a (non-null) custom field value by the field's type
// and return the value to store.
var customTypes = map[string]func(cf *customField, v any) (any, *fieldError){
	"custom_dropdown": func(cf *customField, v any) (any, *fieldError) {
		x, isStr := v.(string)
		if !isStr || !slices.Contains(cf.choices, x) {
			msg, code := choicesMsg(jsonKind(v), strings.Join(cf.choices, ","), !isStr)
			return nil, &fieldError{cf.name, msg, code}
		}
		return x, nil
	},
	"custom_text": func(cf *customField, v any) (any, *fieldError) {
		x, ok := v.(string)
		if !ok {
			return nil, customMismatch(cf, v, "String")
		}
		if len(x) > 255 {
			return nil, &fieldError{cf.name, "Has " + strconv.Itoa(len(x)) + " characters, it can have maximum of 255 characters", "invalid_value"}
		}
		return x, nil
	},
	"custom_number": func(cf *customField, v any) (any, *fieldError) {
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			return nil, customMismatch(cf, v, "Integer")
		}
		return i, nil
	},
	"custom_checkbox": func(cf *customField, v any) (any, *fieldError) {
		x, ok := v.(bool)
		if !ok {
			return nil, customMismatch(cf, v, "Boolean")
		}
		return x, nil
	},
	"custom_date": func(cf *customField, v any) (any, *fieldError) {
		x, ok := v.(string)
		if _, err := time.Parse("2006-01-02", x); !ok || err != nil {
			return nil, &fieldError{cf.name, "It should be in the 'yyyy-mm-dd' format", "invalid_value"}
		}
		return x, nil
	},
}

func customMismatch(cf *customField, v any, want string) *fieldError {
	return &fieldError{cf.name, "Value set is of type " + jsonKind(v) + ".It should be a/an " + want, "datatype_mismatch"}
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
